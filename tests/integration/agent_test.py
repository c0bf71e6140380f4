"""Integration test of the Python zygote agent, without CRIU.

Starts criu-templates/python3/agent.py under Debian's /usr/bin/python3 with the control pipes on
fds 3 and 4, exactly as the engine does, and drives it through docs/agent-protocol.md.
Run: /usr/bin/python3 tests/integration/agent_test.py
"""
import fcntl
import importlib.util
import io
import json
import os
import random
import select
import subprocess
import tarfile
import sys
import tempfile
import time
import unittest
import zipfile

# What the agent unpacks (archives go to $TMPDIR) stays in a directory of this run's own.
SCRATCH = tempfile.mkdtemp(prefix="prewarm-agent-test-")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AGENT = os.path.join(ROOT, "criu-templates", "python3", "agent.py")
PYTHON = "/usr/bin/python3"
TIMEOUT = 20  # seconds for any single reply

HELLO = b'def main(args):\n    return {"hello": args["name"]}\n'


def high_fd(fd):
    """Move fd to >= 10 so the dup2 onto 3/4 in the child can never clobber a source."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Agent:
    """One agent process and the engine's ends of its control channel."""

    def __init__(self, preload="json decimal", env=None, extra_fd=None):
        req_r, self.req_w = os.pipe()      # engine -> agent, fd 3 in the child
        self.rep_r, rep_w = os.pipe()      # agent -> engine, fd 4 in the child
        req_r, rep_w = high_fd(req_r), high_fd(rep_w)

        def to_3_and_4():                  # runs in the child between fork and exec
            os.dup2(req_r, 3)              # os.dup2 makes the copies inheritable
            os.dup2(rep_w, 4)

        full_env = {"PATH": "/usr/bin:/bin", "PREWARM_PRELOAD": preload, "LANG": "C.UTF-8", "TMPDIR": SCRATCH}
        full_env.update(env or {})
        # close_fds=False: the pipe originals are close-on-exec anyway, and any fd we leave
        # inheritable on purpose (extra_fd) lets us check that the agent closes strays.
        self.proc = subprocess.Popen(
            [PYTHON, "-B", "-s", AGENT], env=full_env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=False,
            preexec_fn=to_3_and_4)
        os.close(req_r)
        os.close(rep_w)
        self.stderr = b""

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode())

    def send_raw(self, data):
        os.write(self.req_w, len(data).to_bytes(4, "big") + data)

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            ready, _, _ = select.select([self.rep_r], [], [], TIMEOUT)
            if not ready:
                raise AssertionError("agent did not reply within %ds" % TIMEOUT)
            chunk = os.read(self.rep_r, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def recv(self):
        header = self._read(4)
        if header is None:
            return None
        return json.loads(self._read(int.from_bytes(header, "big")))

    def specialize(self, code, filename="main.py", main="main", env=None):
        self.send({"op": "specialize", "filename": filename, "main": main, "env": env or {}})
        self.send_raw(code)
        return self.recv()

    def invoke(self, args=None):
        self.send({"op": "invoke", "args": {} if args is None else args})
        return self.recv()

    def close(self):
        """EOF on fd 3; returns the exit status."""
        if self.req_w >= 0:
            os.close(self.req_w)
            self.req_w = -1
        _, self.stderr = self.proc.communicate(timeout=TIMEOUT)
        os.close(self.rep_r)
        return self.proc.returncode


def make_tar(files, mode="w:gz", extra=()):
    """A tar archive of files ({name: text}), plus members of other kinds (TarInfo, data)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for info, data in extra:
            t.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def make_zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return buf.getvalue()


class AgentTest(unittest.TestCase):
    def start(self, **kw):
        agent = Agent(**kw)
        self.addCleanup(lambda: agent.proc.poll() is None and agent.close())
        ready = agent.recv()
        self.assertIsNotNone(ready, "no ready message; stderr: %r" % agent.proc.stderr.read())
        self.assertEqual(ready["op"], "ready")
        self.assertRegex(ready["runtime"], r"^Python 3\.\d+\.\d+$")
        self.assertEqual(ready["pid"], agent.proc.pid)
        agent.ready_message = ready
        return agent

    def test_hello_and_repeat_invokes(self):
        a = self.start()
        self.assertEqual(a.specialize(HELLO), {"ok": True})
        for name in ("world", "again"):
            self.assertEqual(a.invoke({"name": name}),
                             {"ok": True, "result": {"hello": name}, "logs": ""})

    def test_entry_name_from_request(self):
        a = self.start()
        code = b"def handler(args):\n    return {'via': 'handler'}\n"
        self.assertEqual(a.specialize(code, main="handler"), {"ok": True})
        self.assertEqual(a.invoke()["result"], {"via": "handler"})

    def test_logs_capture_stdout_and_stderr(self):
        a = self.start()
        code = b"import sys\ndef main(args):\n    print('out line')\n" \
               b"    print('err line', file=sys.stderr)\n    return {}\n"
        a.specialize(code)
        self.assertEqual(a.invoke()["logs"], "out line\nerr line\n")
        self.assertEqual(a.invoke()["logs"], "out line\nerr line\n")  # not accumulated

    def test_syntax_error(self):
        a = self.start()
        reply = a.specialize(b"def main(args):\n    x = 1\n    return {x\n", filename="main.py")
        self.assertEqual(reply["kind"], "syntax")
        self.assertFalse(reply["ok"])
        self.assertRegex(reply["error"], r"^SyntaxError: .*\(main\.py, line 3\)$")

    def test_load_error(self):
        a = self.start()
        reply = a.specialize(b"x = 1 / 0\ndef main(args):\n    return {}\n")
        self.assertEqual((reply["kind"], reply["error"]), ("load", "ZeroDivisionError: division by zero"))
        self.assertEqual(a.invoke()["kind"], "state")

    def test_missing_or_uncallable_entry(self):
        for code in (b"def other(args):\n    return {}\n", b"main = 5\n"):
            a = self.start()
            reply = a.specialize(code)
            self.assertEqual(reply["kind"], "entry", reply)
            self.assertIn("main", reply["error"])

    def test_exceptions_do_not_kill_the_agent(self):
        a = self.start()
        code = (b"import sys\ndef main(args):\n    what = args['what']\n"
                b"    if what == 'value': raise ValueError('boom')\n"
                b"    if what == 'exit': sys.exit(3)\n"
                b"    if what == 'interrupt': raise KeyboardInterrupt()\n"
                b"    if what == 'memory': bytearray(1 << 62)\n"
                b"    return {'fine': True}\n")
        self.assertEqual(a.specialize(code), {"ok": True})
        for what, error in (("value", "ValueError: boom"), ("exit", "SystemExit: 3"),
                            ("interrupt", "KeyboardInterrupt: "), ("memory", "MemoryError: ")):
            reply = a.invoke({"what": what})
            self.assertEqual((reply["ok"], reply["kind"], reply["error"]),
                             (False, "exception", error))
            if what == "exit":          # an exit is no crash: no traceback, as the platforms do
                self.assertNotIn("Traceback", reply["logs"])
            else:
                self.assertIn("Traceback", reply["logs"])
        self.assertEqual(a.invoke({"what": "ok"})["result"], {"fine": True})

    def test_result_must_be_a_json_object(self):
        a = self.start()
        code = (b"def main(args):\n    print('before')\n    return {\n"
                b"        'list': [1, 2], 'none': None, 'str': 'x',\n"
                b"        'object': {'o': object()}, 'nan': {'n': float('nan')},\n"
                b"        'surrogate': {'s': '\\ud800'}, 'good': {'a': [1, 'b', None]},\n"
                b"    }[args['r']]\n")
        self.assertEqual(a.specialize(code), {"ok": True})
        for r, named in (("none", "NoneType"), ("str", "str"),
                         ("object", "object"), ("nan", "Out of range float"), ("surrogate", "surrogate")):
            reply = a.invoke({"r": r})
            self.assertEqual(reply["kind"], "result", reply)
            self.assertIn(named, reply["error"])
            self.assertEqual(reply["logs"], "before\n")
        self.assertEqual(a.invoke({"r": "good"})["result"], {"a": [1, "b", None]})
        self.assertEqual(a.invoke({"r": "list"})["result"], [1, 2])   # arrays, as OpenWhisk's

    def test_streams_apart_and_in_order(self):
        a = self.start()
        code = (b"import sys\nprint('at import')\nprint('import err', file=sys.stderr)\n"
                b"def main(args):\n    print('out')\n    print('err', file=sys.stderr)\n"
                b"    if args.get('fail'):\n        raise ValueError('boom')\n    return args\n")
        self.assertEqual(a.specialize(code), {"ok": True, "logs": "at import\nimport err\n",
                                              "stdout": "at import\n", "stderr": "import err\n"})
        reply = a.invoke({"x": 1})
        self.assertEqual((reply["stdout"], reply["stderr"], reply["logs"]), ("out\n", "err\n", "out\nerr\n"))
        failed = a.invoke({"fail": True})
        self.assertEqual(failed["kind"], "exception")
        self.assertTrue(failed["stderr"].startswith("err\nTraceback (most recent call last):\n"), failed)
        self.assertIn("ValueError: boom", failed["stderr"])
        self.assertIn('File "main.py", line 8, in main', failed["stderr"])
        self.assertNotIn("agent.py", failed["stderr"])               # the agent's frames left out
        self.assertEqual(failed["stdout"], "out\n")

    def test_load_failures_leave_a_traceback(self):
        a = self.start()
        reply = a.specialize(b"import iamnotsupported\n")
        self.assertEqual(reply["kind"], "load")
        self.assertRegex(reply["stderr"], r"^Traceback \(most recent call last\):\n(.|\n)*ModuleNotFoundError")
        self.assertNotIn("agent.py", reply["stderr"])
        b = self.start()
        reply = b.specialize(b" 10 PRINT 'Hello!'\n")
        self.assertEqual(reply["kind"], "syntax")
        self.assertTrue(reply["stderr"].startswith("Traceback (most recent call last):\n"), reply)

    def test_array_argument(self):
        a = self.start()
        self.assertEqual(a.specialize(b"def main(args):\n    return args\n"), {"ok": True})
        reply = a.invoke({"__prewarm_value": ["a", "b"], "__prewarm_env": {"__OW_X": "1"}})
        self.assertEqual(reply["result"], ["a", "b"])
        self.assertEqual(a.invoke(["c"])["result"], ["c"])

    def test_state_errors(self):
        a = self.start()
        self.assertEqual(a.invoke()["kind"], "state")
        self.assertEqual(a.specialize(HELLO), {"ok": True})
        reply = a.specialize(b"def main(args):\n    return {'second': True}\n")
        self.assertEqual(reply["kind"], "state")
        # The refused specialize's code frame was consumed: the channel is still in step.
        self.assertEqual(a.invoke({"name": "x"})["result"], {"hello": "x"})

    def test_parent_needs_the_clone_helper(self):
        # Outside a template rootfs there is no /prewarm/libprewarm-zygote.so: the agent says so
        # in its ready message and refuses to become a parent, and stays usable.
        a = self.start()
        self.assertIs(a.ready_message.get("clone"), False)
        a.send({"op": "parent"})
        reply = a.recv()
        self.assertEqual(reply["kind"], "state")
        self.assertIn("clone helper", reply["error"])
        self.assertEqual(a.specialize(HELLO), {"ok": True})
        self.assertEqual(a.invoke({"name": "x"})["result"], {"hello": "x"})

    def test_tar_archives(self):
        files = {"__main__.py": "import helper\ndef main(args):\n    return {'from': helper.WHERE, 'beside': open('data.txt').read()}\n",
                 "helper.py": "WHERE = 'tar'\n", "data.txt": "next to main"}
        for mode, name in (("w:gz", "action.tar.gz"), ("w:gz", "action.tgz"), ("w", "action.tar")):
            a = self.start()
            self.assertEqual(a.specialize(make_tar(files, mode), filename=name), {"ok": True}, name)
            self.assertEqual(a.invoke()["result"], {"from": "tar", "beside": "next to main"})

    def test_archives_that_reach_out_are_refused(self):
        main = {"__main__.py": "def main(args):\n    return {}\n"}
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        hard = tarfile.TarInfo("hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "__main__.py"
        dev = tarfile.TarInfo("null")
        dev.type, dev.devmajor, dev.devminor = tarfile.CHRTYPE, 1, 3
        cases = [
            ("a symlink", make_tar(main, extra=[(link, None)]), "is a link"),
            ("a hard link", make_tar(main, extra=[(hard, None)]), "is a link"),
            ("a device", make_tar(main, extra=[(dev, None)]), "device"),
            ("a path out", make_tar(dict(main, **{"../../out.py": "x = 1\n"})), "leads out"),
            ("an absolute path", make_tar(dict(main, **{"/tmp/abs.py": "x = 1\n"})), "leads out"),
            ("a zip path out", make_zip(dict(main, **{"../out.py": "x = 1\n"})), "leads out"),
            ("too many members", make_tar(dict(main, **{"f%d" % k: "" for k in range(20001)})), "over the bounds"),
        ]
        for what, blob, why in cases:
            a = self.start()
            name = "action.zip" if blob[:2] == b"PK" else "action.tar.gz"
            reply = a.specialize(blob, filename=name)
            self.assertEqual(reply.get("kind"), "load", what)
            self.assertIn(why, reply["error"], what)
            a.close()

    def test_zip_virtualenv(self):
        venv = {"__main__.py": "import venvmod\ndef main(args):\n    return {'venv': venvmod.WHERE}\n",
                "virtualenv/bin/activate_this.py":
                    "import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), 'lib'))\n",
                "virtualenv/lib/venvmod.py": "WHERE = 'inside'\n"}
        a = self.start()
        self.assertEqual(a.specialize(make_zip(venv), filename="action.zip"), {"ok": True})
        self.assertEqual(a.invoke()["result"], {"venv": "inside"})
        del venv["virtualenv/bin/activate_this.py"]
        b = self.start()
        reply = b.specialize(make_zip(venv), filename="action.zip")
        self.assertEqual(reply["kind"], "load")
        self.assertIn("Zip file does not include /virtualenv/bin/activate_this.py", reply["stderr"])

    def test_zip_archive(self):
        a = self.start()
        blob = make_zip({
            "__main__.py": "import os, helper\ndef main(args):\n"
                           "    return {'msg': helper.greet(args['name']), 'dir': os.path.dirname(__file__)}\n",
            "helper.py": "def greet(name):\n    return 'hi ' + name\n",
        })
        self.assertEqual(a.specialize(blob, filename="action.zip"), {"ok": True})
        result = a.invoke({"name": "zip"})["result"]
        self.assertEqual(result["msg"], "hi zip")
        self.assertTrue(result["dir"].startswith(SCRATCH + "/"), result)

    def test_bad_archives(self):
        for blob in (make_zip({"main.py": "def main(a): return {}\n"}), b"not a zip at all"):
            a = self.start()
            reply = a.specialize(blob, filename="action.zip")
            self.assertEqual(reply["kind"], "load", reply)

    def test_env_applied_before_code_runs(self):
        a = self.start()
        code = (b"import os\nAT_LOAD = os.environ['GREETING']\n"
                b"def main(args):\n    return {'load': AT_LOAD, 'call': os.environ['GREETING']}\n")
        self.assertEqual(a.specialize(code, env={"GREETING": "hej"}), {"ok": True})
        self.assertEqual(a.invoke()["result"], {"load": "hej", "call": "hej"})

    def test_protocol_errors(self):
        a = self.start()
        a.send_raw(b"{not json")
        self.assertEqual(a.recv()["kind"], "protocol")
        a.send({"op": "fly"})
        self.assertEqual(a.recv()["kind"], "protocol")
        a.send([1, 2])
        self.assertEqual(a.recv()["kind"], "protocol")
        self.assertEqual(a.specialize(HELLO), {"ok": True})  # still usable

    def test_lean_state(self):
        # An inheritable stray fd must not survive into the ready state.
        stray = os.open("/dev/null", os.O_RDONLY)
        os.set_inheritable(stray, True)
        try:
            a = self.start()
        finally:
            os.close(stray)
        code = (b"import gc, os\ndef main(args):\n    fds = os.listdir('/proc/self/fd')\n"
                b"    def alive(fd):\n        try: os.fstat(int(fd)); return True\n"
                b"        except OSError: return False\n"
                b"    return {'fds': sorted(int(f) for f in fds if alive(f)),\n"
                b"            'std': [os.readlink('/proc/self/fd/%d' % i) for i in (0, 1, 2)],\n"
                b"            'tasks': len(os.listdir('/proc/self/task')),\n"
                b"            'frozen': gc.get_freeze_count(),\n"
                b"            'cloexec': [os.get_inheritable(3), os.get_inheritable(4)]}\n")
        a.specialize(code)
        result = a.invoke()["result"]
        self.assertEqual(result["fds"], [0, 1, 2, 3, 4])
        self.assertEqual(result["std"], ["/dev/null"] * 3)
        self.assertEqual(result["tasks"], 1)
        self.assertGreater(result["frozen"], 0)
        self.assertEqual(result["cloexec"], [False, False])

    def test_reseed_on_first_message(self):
        # Simulate a checkpoint shared by two copies: a preloaded module pins the random state
        # before "ready". Without the reseed both agents would return Random(1)'s first value.
        pinned = tempfile.mkdtemp()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", pinned]))
        with open(os.path.join(pinned, "pin_random.py"), "w") as f:
            f.write("import random\nrandom.seed(1)\n")
        with open(os.path.join(pinned, "pin_numpy.py"), "w") as f:
            f.write("import numpy\nnumpy.random.seed(1)\n")
        preload = "json pin_random"
        with_numpy = importlib.util.find_spec("numpy") is not None
        if with_numpy:
            preload += " pin_numpy"
        code = (b"import random, sys\ndef main(args):\n    out = {'py': random.random()}\n"
                b"    if 'numpy' in sys.modules: out['np'] = float(sys.modules['numpy'].random.random())\n"
                b"    return out\n")
        env = {"PYTHONPATH": pinned, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        results = []
        for _ in range(2):
            a = self.start(preload=preload, env=env)
            a.specialize(code)
            results.append(a.invoke()["result"])
        seeded = random.Random(1)
        pinned_values = {seeded.random() for _ in range(100)}
        for r in results:
            self.assertNotIn(r["py"], pinned_values)
        self.assertNotEqual(results[0]["py"], results[1]["py"])
        if with_numpy:
            import numpy
            pinned_np = set(numpy.random.RandomState(1).random_sample(100).tolist())
            self.assertNotIn(results[0]["np"], pinned_np)
            self.assertNotEqual(results[0]["np"], results[1]["np"])

    def test_eof_exits_cleanly(self):
        a = self.start()
        a.specialize(HELLO)
        self.assertEqual(a.close(), 0)

    def test_oversized_frame(self):
        a = self.start()
        os.write(a.req_w, (64 * 1024 * 1024 + 1).to_bytes(4, "big"))
        self.assertEqual(a.recv()["kind"], "protocol")
        self.assertEqual(a.close(), 1)
        # Same for an oversized code blob after a specialize request.
        a = self.start()
        a.send({"op": "specialize", "filename": "main.py", "main": "main", "env": {}})
        os.write(a.req_w, (64 * 1024 * 1024 + 1).to_bytes(4, "big"))
        self.assertEqual(a.recv()["kind"], "protocol")
        self.assertEqual(a.close(), 1)

    def test_frame_in_pieces_and_truncated_frame(self):
        a = self.start()
        frame = json.dumps({"op": "invoke", "args": {}}).encode()
        data = len(frame).to_bytes(4, "big") + frame
        for piece in (data[:2], data[2:9], data[9:]):   # short reads on the agent side
            os.write(a.req_w, piece)
            time.sleep(0.05)
        self.assertEqual(a.recv()["kind"], "state")
        os.write(a.req_w, (100).to_bytes(4, "big") + b"{")     # then EOF mid-frame
        self.assertEqual(a.close(), 1)

    def test_thread_at_preload_exits_1(self):
        pinned = tempfile.mkdtemp()
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", pinned]))
        with open(os.path.join(pinned, "spawns_thread.py"), "w") as f:
            f.write("import threading, time\n"
                    "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n")
        a = Agent(preload="json spawns_thread", env={"PYTHONPATH": pinned})
        self.assertIsNone(a.recv())
        self.assertEqual(a.close(), 1)
        self.assertIn(b"2 threads", a.stderr)

    def test_bad_preload_exits_1(self):
        a = Agent(preload="json no_such_module_xyz decimal")
        self.assertIsNone(a.recv())  # no ready message, just EOF
        self.assertEqual(a.close(), 1)
        self.assertIn(b"no_such_module_xyz", a.stderr)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(AgentTest)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        status = main()
    finally:
        subprocess.run(["rm", "-rf", SCRATCH])
    sys.exit(status)
