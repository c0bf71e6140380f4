"""The handler every mode of `prewarm bench` loads and invokes once: small on purpose, so that the
benchmark measures getting a runtime ready for it, not the handler's own work."""
import os


def main(args):
    return {"ok": True, "pid": os.getpid(), "args": args}
