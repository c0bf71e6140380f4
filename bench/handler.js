// The handler every mode of `prewarm bench --template node` loads and invokes once: small on
// purpose, so that the benchmark measures getting a runtime ready for it, not its own work.
function main(args) {
  return {ok: true, pid: process.pid, args};
}
