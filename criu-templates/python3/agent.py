"""prewarm zygote agent for Python.

Runs inside the sandbox as the template's runtime. It preloads modules, makes itself lean,
announces readiness and then serves the engine over the control channel (fd 3 requests,
fd 4 replies). The wire protocol is specified in docs/agent-protocol.md.

The engine checkpoints this process while it blocks reading fd 3, so everything imported or
initialised before that read is free for every restored copy. Rules that follow from that:
no threads, no sockets, no open files besides fds 0-4 at checkpoint time.
"""
import base64
import gc
import importlib
import io
import json
import linecache
import os
import signal
import socket
import sys
import tarfile
import tempfile
import traceback
import types
import zipfile

REQ_FD, REP_FD = 3, 4
ZYGOTE_HELPER = "/prewarm/libprewarm-zygote.so"   # the engine's clone call (src/zygote/clone.c)
STATUS_FD = 5                 # in a clone: where its init tells the engine how the agent ended
INIT = "/prewarm/prewarm-init"  # a restored copy's init (src/zygote/init.c)
MAX_FRAME = 64 << 20          # protocol limit on one frame, in bytes
MAX_LOGS = 1 << 20            # captured output returned per invoke, in characters
ACTION_MODULE = "__action__"  # sys.modules name of the user's code (so pickle/dataclasses work)
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")
MAX_UNPACKED = 512 << 20      # what an archive may unpack to, in bytes (/tmp is smaller anyway)
MAX_MEMBERS = 20000           # and in files and directories


class ProtocolError(Exception):
    """A malformed request; answered with kind "protocol", the channel stays usable."""


class Hangup(Exception):
    """The control channel is finished; the agent exits with status args[0]."""


class Refused(Exception):
    """A request that gets {"ok": false, "kind": kind, "error": message}, plus what the code
    printed (output: the fields of Capture.fields()) when it ran."""
    def __init__(self, kind, message, output=None):
        super().__init__(message)
        self.kind = kind
        self.output = output or {}


# ---------------------------------------------------------------- framing

def read_exact(n, mid_frame):
    """Read exactly n bytes from fd 3 (a pipe may deliver them in pieces)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(REQ_FD, n - len(buf))
        if not chunk:                 # EOF: clean between frames, abnormal inside one
            raise Hangup(1 if buf or mid_frame else 0)
        buf += chunk
    return bytes(buf)


def read_frame():
    size = int.from_bytes(read_exact(4, False), "big")
    if size > MAX_FRAME:              # the protocol's answer: say why, then close the channel
        write_frame(encode({"ok": False, "kind": "protocol",
                            "error": "frame of %d bytes exceeds the limit" % size}))
        raise Hangup(1)
    return read_exact(size, True)


def write_frame(payload):
    data = memoryview(len(payload).to_bytes(4, "big") + payload)
    while data:                       # a pipe may take less than we offer
        data = data[os.write(REP_FD, data):]


def encode(reply):
    # allow_nan=False: NaN/Infinity are not JSON. ensure_ascii=False + strict UTF-8 encoding
    # rejects lone surrogates, which a strict JSON parser on the engine side would choke on.
    return json.dumps(reply, allow_nan=False, ensure_ascii=False).encode("utf-8")


def clean(text):
    """Make agent-generated text (messages, logs) safe to encode as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


def describe(exc):
    return clean("%s: %s" % (type(exc).__name__, exc))


# ---------------------------------------------------------------- output of user code

class Tee(io.TextIOBase):
    """One of the code's streams: kept on its own and, in order, with the other in both."""
    def __init__(self, own, both):
        self.own, self.both = own, both

    def writable(self):
        return True

    def write(self, text):
        self.own.write(text)
        self.both.write(text)
        return len(text)


class Capture:
    """sys.stdout and sys.stderr of the code while it runs (module level or handler)."""
    def __enter__(self):
        self.out, self.err, self.both = io.StringIO(), io.StringIO(), io.StringIO()
        self.saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Tee(self.out, self.both), Tee(self.err, self.both)
        return self

    def __exit__(self, *exc_info):
        sys.stdout, sys.stderr = self.saved
        return False

    def traceback(self, exc):
        """The code's traceback on its stderr, with the agent's own frames left out."""
        shown = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        shown.stack = traceback.StackSummary.from_list(
            [f for f in shown.stack if f.filename != __file__])
        self.err.write("Traceback (most recent call last):\n")
        self.both.write("Traceback (most recent call last):\n")
        for line in shown.format():
            if line.startswith("Traceback (most recent call last)"):
                continue
            self.err.write(line)
            self.both.write(line)

    def fields(self, always=()):
        """logs (both streams in order), stdout and stderr, those with text or named always."""
        texts = {"logs": self.both, "stdout": self.out, "stderr": self.err}
        return {k: truncated(v.getvalue()) for k, v in texts.items() if k in always or v.tell()}


def truncated(text):
    text = clean(text)
    return text if len(text) <= MAX_LOGS else text[:MAX_LOGS] + "\n[prewarm: logs truncated]\n"


# ---------------------------------------------------------------- hooks

HOOK_SECONDS = 10                 # what one phase's hooks may take together


class HookTimeout(Exception):
    pass


def make_hooks_module():
    """The `prewarm` module user code imports: hooks around a checkpoint of an instance that
    loaded it (a second-level template), as SnapStart's and CRaC's."""
    module = types.ModuleType("prewarm")
    module.__doc__ = "Hooks around a checkpoint: before_checkpoint(fn), after_restore(fn)."
    module._before, module._after = [], []

    def before_checkpoint(fn):
        """fn() runs before the instance is checkpointed; the last registered runs first."""
        module._before.append(fn)
        return fn

    def after_restore(fn):
        """fn() runs in every copy restored from the checkpoint (and in the instance itself once
        its checkpoint is taken), in the order registered, after the agent's own reseeding."""
        module._after.append(fn)
        return fn

    module.before_checkpoint, module.after_restore = before_checkpoint, after_restore
    return module


HOOKS = make_hooks_module()
sys.modules["prewarm"] = HOOKS


def run_hooks(phase):
    """The phase's hooks within HOOK_SECONDS; the reply says which one failed and why."""
    hooks = list(reversed(HOOKS._before)) if phase == "before_checkpoint" else list(HOOKS._after)

    def expired(signum, frame):
        raise HookTimeout("the %s hooks took longer than %d s" % (phase, HOOK_SECONDS))
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, HOOK_SECONDS)
    failed = None
    with Capture() as output:
        try:
            for hook in hooks:
                try:
                    hook()
                except BaseException as exc:
                    if not isinstance(exc, HookTimeout):
                        output.traceback(exc)
                    failed = "%s hook %s: %s" % (phase, getattr(hook, "__name__", "?"), describe(exc))
                    break
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    if failed:
        return dict({"ok": False, "kind": "hook", "error": failed}, **output.fields())
    return dict({"ok": True, "hooks": len(hooks)}, **output.fields())


# ---------------------------------------------------------------- archives

def checked_name(name):
    """A member's path inside the archive's directory, or Refused: nothing absolute, no '..'."""
    path = os.path.normpath(name)
    if path.startswith("/") or path == ".." or path.startswith("../") or "\0" in path:
        raise Refused("load", "archive member %r leads out of the archive" % name)
    return path


def unpack_archive(blob, filename, prefix):
    """A zip, tar or tar.gz into a new private directory of $TMPDIR (the sandbox's /tmp), returned. Only files and
    directories; no member outside it, no link, no device; at most MAX_UNPACKED bytes and
    MAX_MEMBERS members, checked before anything is written."""
    root = tempfile.mkdtemp(prefix=prefix)   # $TMPDIR: /tmp in the sandbox, a test's own outside
    try:
        if filename.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(blob)) as archive:
                members = archive.infolist()
                bound_archive(len(members), sum(m.file_size for m in members))
                for m in members:
                    checked_name(m.filename)
                archive.extractall(root)
            return root
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as archive:
            members = archive.getmembers()
            bound_archive(len(members), sum(m.size for m in members if m.isfile()))
            for m in members:
                path = checked_name(m.name)
                if not (m.isfile() or m.isdir()):
                    raise Refused("load", "archive member %r is a %s, which an action may not hold"
                                  % (m.name, "link" if m.issym() or m.islnk() else "device or special file"))
                m.name = path
            for m in members:
                archive.extract(m, root, set_attrs=False)
        return root
    except Refused:
        raise
    except Exception as exc:          # corrupt, encrypted, unsupported, /tmp full, ...
        raise Refused("load", "cannot unpack archive: " + describe(exc))


def bound_archive(members, size):
    if members > MAX_MEMBERS or size > MAX_UNPACKED:
        raise Refused("load", "archive of %d members and %d bytes unpacked is over the bounds of %d and %d"
                      % (members, size, MAX_MEMBERS, MAX_UNPACKED))


# ---------------------------------------------------------------- requests

class Agent:
    def __init__(self):
        self.handler = None
        self.specialized = False
        self.web = None               # the Fission and OpenFaaS conventions' Flask app
        self.convention = "openwhisk"

    def specialize(self, req, blob):
        if self.specialized:
            raise Refused("state", "already specialized; an instance loads code only once")
        filename, entry, env = req.get("filename"), req.get("main", "main"), req.get("env", {})
        convention = req.get("convention", "openwhisk")
        if not isinstance(filename, str) or not filename.endswith((".py",) + ARCHIVES):
            raise ProtocolError("filename must be a string ending in .py, .zip, .tar, .tar.gz or .tgz")
        if convention not in ("openwhisk", "fission", "openfaas"):
            raise ProtocolError("convention must be openwhisk, fission or openfaas")
        if not isinstance(entry, str):
            raise ProtocolError("main must be a string")
        if not isinstance(env, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ProtocolError("env must be an object of strings")
        self.specialized = True       # from here on user code may run, even if loading fails
        go_under_init()
        os.environ.update(env)        # before any user code runs, module level included

        with Capture() as output:
            if convention in ("fission", "openfaas"):
                handler = self.load_fission(filename, blob, entry, output)
                self.convention = convention
            else:
                handler = self.load(filename, blob, entry, req["filename"], output)
        self.handler = handler
        return dict({"ok": True}, **output.fields())

    def load_fission(self, filename, blob, entry, output):
        """Fission's Python environment: entry "module.func" ("func": main.func, "": main.main);
        a package's directory on sys.path, its module imported; a single file loaded whole."""
        import flask
        module_name, _, func = entry.rpartition(".") if entry else ("main", "", "main")
        module_name = module_name or "main"
        try:
            if filename.endswith(ARCHIVES):
                root = self.unpack(blob, filename)
                os.chdir(root)
                sys.path.append(root)
                module = importlib.import_module(module_name)
            else:
                code = compile(blob, filename, "exec", dont_inherit=True)
                module = types.ModuleType("mod")
                module.__file__ = filename
                exec(code, module.__dict__)
        except Refused:
            raise
        except BaseException as exc:  # SyntaxError, ImportError, SystemExit, ...
            output.traceback(exc)
            raise Refused("load", describe(exc), output.fields())
        handler = getattr(module, func, None)
        if not callable(handler):
            raise Refused("entry", "no callable named %r in %s" % (func, module_name), output.fields())
        self.web = flask.Flask("fission-function")
        return handler

    @staticmethod
    def unpack(blob, filename):
        """A package (ustar from the engine, or an archive) into a private /tmp directory."""
        return unpack_archive(blob, filename, "package-")

    def call_web(self):
        """The function, inside the request context: Fission's main(), or OpenFaaS's
        handle(event, context) with its answer formatted as python3-http's index.py does."""
        if self.convention == "fission":
            return self.handler()
        import flask
        request = flask.request
        event = types.SimpleNamespace(body=request.get_data(), headers=request.headers, method=request.method,
                                      query=request.args, path=request.path)
        context = types.SimpleNamespace(hostname=os.environ.get("HOSTNAME", "localhost"))
        res = self.handler(event, context)
        if res is None:
            return "", 200
        if not isinstance(res, dict):
            return res
        body = res.get("body", "")
        body = flask.jsonify(body) if isinstance(body, dict) else str(body)
        headers = res.get("headers", [])
        if isinstance(headers, dict):
            headers = list(headers.items())
        return body, res.get("statusCode", 200), headers

    def invoke_web(self, req):
        """One request as Fission's environment serves it: the function inside a Flask request
        context, what it returns made into a response by Flask."""
        http = req.get("args", {})
        if not isinstance(http, dict) or not isinstance(http.get("headers", []), list):
            raise ProtocolError("a web invoke's args are {method, path, query, headers, body_b64}")
        body = base64.b64decode(http.get("body_b64", ""))
        with Capture() as output:
            try:
                with self.web.test_request_context(
                        path=http.get("path", "/"), method=http.get("method", "GET"),
                        query_string=http.get("query", ""), data=body,
                        headers=[tuple(h) for h in http.get("headers", [])]):
                    response = self.web.make_response(self.call_web())
                error = None
            except BaseException as exc:
                error = exc
                if not isinstance(exc, SystemExit):
                    output.traceback(exc)
        streams = output.fields(always=("logs",))
        if error is not None:
            return dict({"ok": False, "kind": "exception", "error": describe(error)}, **streams)
        result = {"status": response.status_code,
                  "headers": [[k, v] for k, v in response.headers.items()],
                  "body_b64": base64.b64encode(response.get_data()).decode()}
        return encode(dict({"ok": True, "result": result}, **streams))

    def load(self, filename, blob, entry, shown_name, output):
        """The handler, or Refused with the module-level output and the traceback."""
        if filename.endswith(ARCHIVES):
            try:
                filename, blob = self.extract(blob, filename)
            except Refused as exc:
                exc.output = output.fields()
                raise
            os.chdir(os.path.dirname(filename))   # relative paths reach the unpacked files
        try:
            code = compile(blob, filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:   # ValueError: NUL bytes in the source
            output.traceback(exc)
            raise Refused("syntax", describe(exc), output.fields())
        # Let tracebacks show source lines even though a .py action never exists on disk.
        text = blob.decode("utf-8", "replace")
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)

        module = types.ModuleType(ACTION_MODULE)
        module.__file__ = filename
        sys.modules[ACTION_MODULE] = module
        try:
            exec(code, module.__dict__)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt included
            if not isinstance(exc, SystemExit):   # an exit is not a crash: no traceback
                output.traceback(exc)
            raise Refused("load", describe(exc), output.fields())
        handler = getattr(module, entry, None)
        if not callable(handler):
            raise Refused("entry", "no callable named %r in %s" % (entry, shown_name), output.fields())
        return handler

    @staticmethod
    def extract(blob, filename):
        """OpenWhisk convention: unpack into a private /tmp dir, run its __main__.py."""
        root = unpack_archive(blob, filename, "action-")
        main_path = os.path.join(root, "__main__.py")
        if not os.path.isfile(main_path):
            print("Zip file does not include __main__.py", file=sys.stderr)
            raise Refused("load", "Zip file does not include __main__.py")
        with open(main_path, "rb") as f:
            source = f.read()
        sys.path.insert(0, root)
        Agent.activate_virtualenv(root)
        return main_path, source

    @staticmethod
    def activate_virtualenv(root):
        """OpenWhisk's Python convention: a zip may carry its packages in virtualenv/."""
        venv = os.path.join(root, "virtualenv")
        if not os.path.isdir(venv):
            return
        activate = os.path.join(venv, "bin", "activate_this.py")
        if not os.path.isfile(activate):
            message = "Invalid virtualenv. Zip file does not include /virtualenv/bin/activate_this.py"
            print(message, file=sys.stderr)
            raise Refused("load", message)
        with open(activate) as f:
            exec(compile(f.read(), activate, "exec"), {"__file__": activate})

    def parent(self):
        """Become the template parent: clone children on a socket whose other end the engine
        takes from this process (pidfd_getfd) once it has read the reply."""
        if self.specialized or ZYGOTE is None:
            raise Refused("state", "only an unspecialized zygote with the clone helper is a parent")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        write_frame(encode({"ok": True, "fd": theirs.fileno()}))
        serve_parent(mine, theirs)

    def invoke(self, req):
        """Returns the reply, already encoded when it carries the handler's result."""
        if self.handler is None:
            raise Refused("state", "invoke before a successful specialize")
        if self.web is not None:
            return self.invoke_web(req)
        args = req.get("args", {})
        if not isinstance(args, (dict, list)):
            raise ProtocolError("args must be an object or an array")
        # Per-activation environment (OpenWhisk's __OW_* context) rides in the arguments under a
        # reserved key; keys the previous activation set and this one does not are removed. An
        # argument that is not an object rides beside it, under __prewarm_value.
        env = args.pop("__prewarm_env", None) if isinstance(args, dict) else None
        if isinstance(args, dict) and "__prewarm_value" in args:
            args = args["__prewarm_value"]
        if env is not None:
            if not isinstance(env, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
                raise ProtocolError("__prewarm_env must be an object of strings")
            for key in set(getattr(self, "activation_env", ())) - set(env):
                os.environ.pop(key, None)
            os.environ.update(env)
            self.activation_env = list(env)
        with Capture() as output:
            try:
                result, error = self.handler(args), None
            except BaseException as exc:  # the agent must survive sys.exit(), MemoryError, ...
                result, error = None, exc
                if not isinstance(exc, SystemExit):
                    output.traceback(exc)
        streams = output.fields(always=("logs",))
        if error is not None:
            return dict({"ok": False, "kind": "exception", "error": describe(error)}, **streams)
        if not isinstance(result, (dict, list)):
            return dict({"ok": False, "kind": "result",
                         "error": "handler returned %s, not a dict" % type(result).__name__}, **streams)
        try:                          # encoded here, so a bad result is the handler's fault
            return encode(dict({"ok": True, "result": result}, **streams))
        except Exception as exc:      # TypeError, ValueError (NaN, cycles), RecursionError
            return dict({"ok": False, "kind": "result",
                         "error": "handler returned a result that is not JSON: " + describe(exc)}, **streams)


# ---------------------------------------------------------------- template parent

class Zygote:
    """The clone call of libprewarm-zygote, loaded before the checkpoint so every copy has it."""

    def __init__(self, path):
        import ctypes
        self.ctypes = ctypes
        # PyDLL: the call keeps the interpreter lock, as os.fork() does across fork().
        self.lib = ctypes.PyDLL(path, use_errno=True)

        class Request(ctypes.Structure):
            _fields_ = [("size", ctypes.c_uint32), ("ctl_in", ctypes.c_int32),
                        ("ctl_out", ctypes.c_int32), ("sync", ctypes.c_int32),
                        ("cgroup", ctypes.c_int32), ("uid", ctypes.c_uint32),
                        ("gid", ctypes.c_uint32), ("tmp_mb", ctypes.c_uint32)]
        self.Request = Request
        self.lib.prewarm_zygote_clone.restype = ctypes.c_int
        self.lib.prewarm_zygote_clone.argtypes = [ctypes.POINTER(Request),
                                                  ctypes.POINTER(ctypes.c_int)]
        api = ctypes.pythonapi
        self.in_child = False
        self.before, self.after_parent, self.after_child = (
            api.PyOS_BeforeFork, api.PyOS_AfterFork_Parent, api.PyOS_AfterFork_Child)

    def clone(self, req, fds):
        """Returns (pid, pidfd) in the parent and (0, None) in the child, sandboxed."""
        ctypes = self.ctypes
        ints = [req.get(k) for k in ("uid", "gid", "tmp_mb")]
        if not all(isinstance(v, int) and 0 < v < 1 << 32 for v in ints) or len(fds) not in (3, 4):
            raise ProtocolError("clone needs uid, gid, tmp_mb and 3 or 4 descriptors")
        request = self.Request(ctypes.sizeof(self.Request), fds[0], fds[1], fds[2],
                               fds[3] if len(fds) == 4 else -1, *ints)
        pidfd = ctypes.c_int(-1)
        gc.freeze()                   # what the parent made since goes untraversed in the child too
        self.before()
        pid = self.lib.prewarm_zygote_clone(ctypes.byref(request), ctypes.byref(pidfd))
        if pid == 0:
            self.after_child()
            self.in_child = True
            return 0, None
        self.after_parent()
        if pid < 0:
            raise Refused("clone", "clone3: " + os.strerror(-pid))
        return pid, pidfd.value


ZYGOTE = None
PARENT_SOCKET = [None]                # a parent's end of the engine's socket


def reap_children(signum, frame):
    """A parent's clones are its children: it reaps them so they leave no zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve_parent(sock, engine_end):
    """Clone a child for each request on the engine's socket, until the engine hangs up."""
    signal.signal(signal.SIGCHLD, reap_children)
    gc.disable()                      # a parent keeps its pages as its children share them
    PARENT_SOCKET[0] = sock
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 8)
        if engine_end is not None:    # the engine took its end: the socket is ours alone now
            engine_end.close()
            engine_end = None
        if not msg:
            raise Hangup(0)
        reply, pidfd = parent_request(msg, fds)
        if reply is None:
            continue
        socket.send_fds(sock, [encode(reply)], [pidfd] if pidfd is not None else [])
        if pidfd is not None:
            os.close(pidfd)


def parent_request(msg, fds):
    """Answers one request of the engine: (reply, pidfd), or (None, None) for none. The
    descriptors that came with it are the child's: the parent closes its copies."""
    try:
        req = json.loads(msg)
        if not isinstance(req, dict) or req.get("op") not in ("clone", "attached"):
            raise ProtocolError("a parent takes only clone requests")
        if req["op"] == "attached":
            return None, None
        pid, pidfd = ZYGOTE.clone(req, fds)
        if pid == 0:
            become_instance()         # the child: never comes back here
    except (ProtocolError, Refused) as exc:
        return refusal(exc), None
    except ValueError as exc:
        return {"ok": False, "kind": "protocol", "error": "malformed JSON: %s" % exc}, None
    finally:
        if ZYGOTE.in_child:       # the helper closed them already, and they are not ours
            fds = ()
        for fd in fds:
            os.close(fd)
    return {"ok": True, "pid": pid}, pidfd


def go_under_init():
    """A restored copy's agent is pid 1 of its namespace: an init, which the kernel hands every
    orphan of the function's and spares its own abort(). Before any user code runs, it forks and
    goes on in the child while the parent closes the channel and becomes INIT. A clone's
    agent is pid 2 already, under the init become_instance made."""
    if os.getpid() != 1 or not os.access(INIT, os.X_OK):
        return
    agent = os.fork()
    if agent == 0:
        return
    os.close(REQ_FD)
    os.close(REP_FD)
    try:
        os.execv(INIT, [INIT, str(agent)])
    finally:
        os._exit(127)                 # the namespace ends with its init: the engine sees it


def become_instance():
    """In a fresh clone: pid 1 of its namespace stays its init, the agent runs in its child."""
    PARENT_SOCKET[0].detach()         # the helper closed it; a reused number must stay open
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    gc.enable()
    agent = os.fork()
    if agent == 0:
        os.close(STATUS_FD)           # the init's, not the function's to write on
        raise Restart()
    os.close(REQ_FD)
    os.close(REP_FD)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda signum, frame: os.kill(agent, signum))
    while True:                       # reap orphans; end with the agent, the way it ended
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        if pid == agent:
            how = ("exited %d" % os.WEXITSTATUS(status) if os.WIFEXITED(status)
                   else "killed %d" % os.WTERMSIG(status))
            try:
                os.write(STATUS_FD, how.encode())
            except OSError:
                pass
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


class Restart(Exception):
    """Unwinds a new clone's agent out of the parent's loop, to serve as an instance."""


def process_start_time():
    """Field 22 of /proc/self/stat: when this process started, in clock ticks since boot."""
    with open("/proc/self/stat", "rb") as f:
        stat = f.read()
    return stat[stat.rindex(b")") + 2:].split()[19]


def reseed():
    """Give this restored copy its own random state (every copy shares the checkpoint's)."""
    for name in ("random", "numpy.random"):
        module = sys.modules.get(name)
        if module is not None:
            module.seed()             # no argument: seed from os.urandom
    if "tempfile" in sys.modules:
        sys.modules["tempfile"]._name_sequence = None   # cached Random for temp names
    if "ssl" in sys.modules:          # OpenSSL's DRBG only reseeds itself on fork()
        sys.modules["ssl"].RAND_add(os.urandom(32), 32.0)


def refusal(exc):
    """The reply to a request refused with exc, a ProtocolError or a Refused (with what the
    code printed, if it ran)."""
    if isinstance(exc, Refused):
        return dict({"ok": False, "kind": exc.kind, "error": clean(str(exc))}, **exc.output)
    return {"ok": False, "kind": "protocol", "error": clean(str(exc))}


def serve():
    """Answer requests until the engine hangs up (Hangup carries the exit status)."""
    agent = Agent()
    started_seen = None               # the checkpoint is taken before the first message
    while True:
        frame = read_frame()
        # Any restored copy, of a template or of a checkpointed specialized instance, is a new
        # process with a start time of its own: its first message finds another start time than
        # the one this agent saw last (or none yet) and reseeds.
        started = process_start_time()
        if started != started_seen:
            reseed()
            started_seen = started
        try:
            try:
                req = json.loads(frame)
            except ValueError as exc:
                raise ProtocolError("malformed JSON: %s" % exc)
            if not isinstance(req, dict):
                raise ProtocolError("a request must be a JSON object")
            op = req.get("op")
            if op == "specialize":
                blob = read_frame()   # the code blob always follows, even if we refuse
                reply = agent.specialize(req, blob)
            elif op == "invoke":
                reply = agent.invoke(req)
            elif op == "parent":
                reply = agent.parent()
            elif op in ("before_checkpoint", "after_restore"):
                reply = run_hooks(op)     # after a restore, the reseeding above came first
            else:
                raise ProtocolError("unknown op %r" % (op,))
        except (ProtocolError, Refused) as exc:
            reply = refusal(exc)
        payload = reply if isinstance(reply, bytes) else encode(reply)
        if len(payload) > MAX_FRAME:
            payload = encode({"ok": False, "kind": "result", "logs": "",
                              "error": "reply of %d bytes exceeds the frame limit" % len(payload)})
        write_frame(payload)


def prepare():
    """Preload, then shed everything CRIU would have to save or that copies must not share."""
    for name in os.environ.get("PREWARM_PRELOAD", "").split():
        try:
            importlib.import_module(name)
        except BaseException as exc:
            print("prewarm agent: cannot preload %s: %s" % (name, describe(exc)), file=sys.stderr)
            sys.exit(1)
    # Native threads (BLAS, numexpr, OpenMP) are invisible to threading.active_count().
    try:
        tasks = len(os.listdir("/proc/self/task"))
    except OSError:                   # no /proc in the sandbox: trust Python's own count
        tasks = sys.modules["threading"].active_count() if "threading" in sys.modules else 1
    if tasks != 1:
        print("prewarm agent: %d threads after preloading; the checkpoint must be "
              "single-threaded (set e.g. OMP_NUM_THREADS=1 in the template)" % tasks,
              file=sys.stderr)
        sys.exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os.closerange(REP_FD + 1, os.sysconf("SC_OPEN_MAX"))   # inherited or leaked descriptors
    for fd in (REQ_FD, REP_FD):       # a handler's os.system() child must not get the channel
        os.set_inheritable(fd, False)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    global ZYGOTE
    if os.path.exists(ZYGOTE_HELPER):
        ZYGOTE = Zygote(ZYGOTE_HELPER)
    gc.collect()
    gc.freeze()                       # survivors go to the permanent generation: no rescans
    ready()


def ready():
    version = "%d.%d.%d" % sys.version_info[:3]
    write_frame(encode({"op": "ready", "runtime": "Python " + version, "pid": os.getpid(),
                        "clone": ZYGOTE is not None}))


def main():
    prepare()
    while True:
        try:
            serve()
        except Restart:               # a parent's new clone: announce itself, then serve
            ready()
            continue
        except Hangup as hangup:
            return hangup.args[0]
        except BrokenPipeError:       # the engine closed its end of fd 4
            return 1


if __name__ == "__main__":
    sys.exit(main())
