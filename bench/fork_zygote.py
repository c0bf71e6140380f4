"""The fork_zygote mode of `prewarm bench`: the SOCK / OpenLambda approach to cold starts.

A long-lived, unisolated runtime process that has imported the template's preload modules forks
one child per request; the child loads the handler and answers its first invoke. No checkpoint,
no namespaces, no cgroup: the baseline a restore has to compete with.

Usage: RUNTIME fork_zygote.py AGENT_PY, started by the bench with the template's runtime argv and
environment (PREWARM_PRELOAD names the modules) and a SOCK_SEQPACKET socket on fd 3:
  zygote -> bench  "ready"                  once the preloads are imported
  bench  -> zygote "fork" + SCM_RIGHTS [r, w] two pipe ends for the child's agent protocol
  zygote -> bench  "PID"                    the child, which serves the template agent's protocol
                                            on r (fd 3) and w (fd 4) until r reaches EOF
The zygote exits when the bench closes the socket. Children are reaped by the kernel (SIGCHLD is
ignored); the bench waits for their exit through a pidfd.
"""
import gc
import importlib
import importlib.util
import os
import signal
import socket
import sys

CONTROL_FD = 3


def load_agent(path):
    """The template's own agent, as a module: the child serves exactly its protocol."""
    spec = importlib.util.spec_from_file_location("prewarm_agent", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preload():
    for name in os.environ.get("PREWARM_PRELOAD", "").split():
        importlib.import_module(name)
    gc.collect()
    gc.freeze()      # as the agent does before its checkpoint: forked pages stay shared longer


def child(agent, control, fds):
    control.close()  # frees fd 3 for the request pipe
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    req, rep = fds
    os.dup2(req, agent.REQ_FD)
    os.dup2(rep, agent.REP_FD)
    for fd in (req, rep):
        if fd not in (agent.REQ_FD, agent.REP_FD):
            os.close(fd)
    for fd in (agent.REQ_FD, agent.REP_FD):
        os.set_inheritable(fd, False)
    status = 1
    try:
        agent.serve()
    except agent.Hangup as hangup:
        status = hangup.args[0]
    except BrokenPipeError:
        status = 1
    finally:
        os._exit(status)


def serve(agent, control):
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(control, 16, 2)
        except InterruptedError:
            continue
        if not msg:
            return   # the bench is gone
        if msg != b"fork" or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            control.send(b"error: expected 'fork' with two descriptors")
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            control.send(("error: fork: %s" % exc).encode())
            continue
        if pid == 0:
            child(agent, control, fds)
        for fd in fds:
            os.close(fd)
        control.send(str(pid).encode())


def main():
    agent = load_agent(sys.argv[1])
    control = socket.socket(fileno=CONTROL_FD)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    preload()
    control.send(b"ready")
    serve(agent, control)


if __name__ == "__main__":
    main()
