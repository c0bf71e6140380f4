'use strict';
/*
 * The fork_zygote mode of `prewarm bench` for the node template: bench/fork_zygote.py's protocol
 * and approach (SOCK / OpenLambda), in Node. A long-lived, unisolated Node that has required the
 * template's preloads forks one child per request; the child serves the template agent's own
 * protocol. Node cannot fork or receive descriptors by itself: the clone helper's Node module
 * (PREWARM_ZYGOTE_HELPER, set by the bench) does both, and re-makes the child's event loop.
 *
 * Usage: node [template flags] fork_zygote.js AGENT_JS, with the SOCK_SEQPACKET socket on fd 3.
 */
const CONTROL_FD = 3;

function loadHelper() {
  const mod = {exports: {}};
  process.dlopen(mod, process.env.PREWARM_ZYGOTE_HELPER);
  return mod.exports;
}

function main() {
  const helper = loadHelper();
  const agent = require(process.argv[2]);   // the template's agent, as a module: not started
  for (const name of (process.env.PREWARM_PRELOAD || '').split(/\s+/).filter(Boolean))
    require(name);
  helper.reapChildren();
  helper.send(CONTROL_FD, Buffer.from('ready'), -1);
  for (;;) {
    const {msg, fds} = helper.recv(CONTROL_FD);
    if (msg === null)
      return helper.exit(0);                // the bench is gone
    if (msg.toString() !== 'fork' || fds.length !== 2) {
      fds.forEach(helper.close);
      helper.send(CONTROL_FD, Buffer.from("error: expected 'fork' with two descriptors"), -1);
      continue;
    }
    const pid = helper.forkServing(fds[0], fds[1]);
    if (pid === 0)                          // fds 3 and 4 are its channel now: forkServing put it there
      return agent.serve().catch((e) => helper.exit(e instanceof agent.Hangup ? e.status : 1));
    fds.forEach(helper.close);
    helper.send(CONTROL_FD, Buffer.from(String(pid)), -1);
  }
}

main();
