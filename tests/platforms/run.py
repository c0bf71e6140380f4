#!/usr/bin/env python3
"""Runs a platform's cases (tests/platforms/PLATFORM.json) against a real prewarmd slot.

Usage: run.py PREWARMD CASES.json

Starts prewarmd on a scratch state dir with one action slot of the file's "template" (python3 unless
it says otherwise), builds that template through its API, and for each case resets the slot and
drives it the platform's way:
- openwhisk: claims it (with the case's container environment), initializes it, runs it, and
  checks every answer and then the slot's logs the way OpenWhisk's checkStreams does: exactly
  `sentinels` end markers on each stream, then each stream with the markers removed and trimmed;
- fission: writes the suite's package under the daemon's --fission-root, specializes the slot (v1
  or v2, as the fetcher does), then sends it HTTP requests as the router does (a request's
  "pause_s" first leaves the slot idle that long) and checks status, headers and body.
Prints one line per case; exits 1 if any case failed. Everything it started is stopped and
removed, also on failure.
"""
import base64
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("prewarmd", timeout=300)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(300)
        self.sock.connect(self.path)


def request(conn, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    text = r.read().decode("utf-8", "replace")
    try:
        return r.status, json.loads(text) if text else None
    except ValueError:
        return r.status, text


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def expand(value):
    """{"$repeat": s, "$times": n} stands for s * n (a large input kept small in the file)."""
    if isinstance(value, dict):
        if set(value) == {"$repeat", "$times"}:
            return value["$repeat"] * value["$times"]
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def init_body(case):
    if "init" in case:
        return case["init"]
    if "zip" in case:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name, text in case["zip"].items():
                z.writestr(name, text)
        code, binary = base64.b64encode(buf.getvalue()).decode(), True
    else:  # a list of parts, each a string or a $repeat, stands for their concatenation
        code, binary = case["code"], False
        if isinstance(code, list):
            code = "".join(expand(part) for part in code)
    return {"value": {"name": "action", "main": case.get("main", "main"), "code": code, "binary": binary,
                      "env": case.get("env")}}


class Daemon:
    def __init__(self, prewarmd, template="python3"):
        self.work = tempfile.mkdtemp(prefix="prewarm-platforms.")
        self.state = os.path.join(self.work, "state")
        self.fission_root = os.path.join(self.work, "userfunc")
        os.mkdir(self.fission_root)
        self.port = free_port()
        self.log = open(os.path.join(self.work, "daemon.log"), "wb")
        self.proc = subprocess.Popen(
            [prewarmd, "--state-dir", self.state, "--openwhisk-ports", "%d-%d" % (self.port, self.port),
             "--zygotes", "1-2", "--fission-root", self.fission_root, "--slot-template", template],
            stdout=self.log, stderr=self.log)
        self.sock = os.path.join(self.state, "prewarmd.sock")
        for _ in range(400):
            if os.path.exists(self.sock):
                try:
                    if self.api("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.05)
        else:
            raise RuntimeError("prewarmd did not start")
        status, body = self.api("POST", "/v1/templates/%s/build" % template)
        if status != 200:
            raise RuntimeError("building %s: %s %s" % (template, status, body))

    def api(self, method, path, body=None):
        conn = UnixConnection(self.sock)
        try:
            return request(conn, method, path, body)
        finally:
            conn.close()

    def slot(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            return request(conn, method, path, body)
        finally:
            conn.close()

    def slot_raw(self, method, path, body=b"", headers=None):
        """A request as a platform's router sends it: (status, headers, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def streams(self):
        logs = os.path.join(self.state, "slots", str(self.port))
        with open(os.path.join(logs, "stdout"), encoding="utf-8", errors="replace") as out, \
                open(os.path.join(logs, "stderr"), encoding="utf-8", errors="replace") as err:
            return out.read(), err.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def tail(self):
        with open(os.path.join(self.work, "daemon.log"), errors="replace") as f:
            return "".join(f.readlines()[-20:])


def check_answer(step, status, body, want):
    problems = []
    if status != want.get("status", 200):
        problems.append("%s: status %s, wanted %s (%s)" % (step, status, want.get("status", 200), str(body)[:300]))
    if "result" in want and body != expand(want["result"]):
        problems.append("%s: result %s" % (step, str(body)[:300]))
    for key in want.get("result_keys", []):
        if not isinstance(body, dict) or key not in body:
            problems.append("%s: no %s in %s" % (step, key, str(body)[:300]))
    for key, part in want.get("result_contains", {}).items():
        if not isinstance(body, dict) or part not in str(body.get(key)):
            problems.append("%s: %s lacks %r: %s" % (step, key, part, str(body)[:300]))
    error = body.get("error") if isinstance(body, dict) else None
    if "error" in want and error != want["error"]:
        problems.append("%s: error %r, wanted %r" % (step, error, want["error"]))
    if "error_contains" in want and want["error_contains"] not in str(error):
        problems.append("%s: error %r lacks %r" % (step, error, want["error_contains"]))
    if want.get("error_key") and error is None:
        problems.append("%s: no error in %s" % (step, str(body)[:300]))
    return problems


def check_streams(out, err, want):
    """ActionContainer.checkStreams: the count of markers, then each stream trimmed."""
    problems = []
    sentinels = want.get("sentinels")
    if sentinels is not None:
        for name, text in (("stdout", out), ("stderr", err)):
            n = text.count(SENTINEL)
            if n != sentinels:
                problems.append("%s has %d end markers, wanted %d" % (name, n, sentinels))
    out, err = out.replace(SENTINEL, "").strip(), err.replace(SENTINEL, "").strip()
    for name, text in (("stdout", out), ("stderr", err)):
        if name in want and text != want[name]:
            problems.append("%s is %r, wanted %r" % (name, text[:300], want[name]))
        for part in want.get(name + "_contains", []):
            if part not in text:
                problems.append("%s lacks %r: %r" % (name, part, text[:300]))
        for part in want.get(name + "_lacks", []):
            if part in text:
                problems.append("%s has %r: %r" % (name, part, text[:300]))
        if name + "_regex" in want and not re.search(want[name + "_regex"], text):
            problems.append("%s does not match %r: %r" % (name, want[name + "_regex"], text[:300]))
    return problems


def write_files(root, files):
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def check_web_answer(step, status, headers, body, want):
    problems = []
    text = body.decode("utf-8", "replace")
    if status != want.get("status", 200):
        problems.append("%s: status %s, wanted %s (%s)" % (step, status, want.get("status", 200), text[:300]))
    if "body" in want and want.get("method") != "HEAD" and text != want["body"]:
        problems.append("%s: body %r, wanted %r" % (step, text[:300], want["body"]))
    if "body_contains" in want and want["body_contains"] not in text:
        problems.append("%s: body lacks %r: %r" % (step, want["body_contains"], text[:300]))
    if "body_b64" in want and body != base64.b64decode(want["body_b64"]):
        problems.append("%s: body %r" % (step, body[:100]))
    if "json" in want:
        try:
            if json.loads(text) != want["json"]:
                problems.append("%s: JSON %s" % (step, text[:300]))
        except ValueError:
            problems.append("%s: not JSON: %r" % (step, text[:300]))
    if "content_type" in want and not headers.get("content-type", "").startswith(want["content_type"]):
        problems.append("%s: content type %r" % (step, headers.get("content-type")))
    for name, value in want.get("header", {}).items():
        if headers.get(name.lower()) != value:
            problems.append("%s: header %s is %r, wanted %r" % (step, name, headers.get(name.lower()), value))
    return problems


def run_fission_case(d, suite, case):
    d.api("DELETE", "/v1/slots/%d" % d.port)
    problems = []
    if case.get("user"):
        write_files(d.fission_root, {"user": case["user"]})
    write_files(d.fission_root, case.get("user_file", {}))
    spec = case.get("specialize")
    if spec == "v1":
        status, _ = d.slot("POST", "/specialize")
        problems += [] if status == 200 else ["v1 specialize: status %s" % status]
    elif spec is not None:
        target = os.path.join(d.fission_root, spec["file"]) if "file" in spec else os.path.join(d.fission_root, "pkg")
        body = {"filepath": target, "functionName": spec["functionName"], "url": "/" + case["name"][:8],
                "FunctionMetadata": {"name": "fn", "namespace": "default"}, "envVersion": 2}
        status, answer = d.slot("POST", "/v2/specialize", body)
        if status != 200:
            problems.append("v2 specialize: status %s (%s)" % (status, answer))
        if "respecialize" in case:
            status, answer = d.slot("POST", "/v2/specialize", body)
            if status != case["respecialize"]:
                problems.append("second specialize: status %s, wanted %s" % (status, case["respecialize"]))
    for k, req in enumerate(case.get("requests", [])):
        time.sleep(req.get("pause_s", 0))  # an idle slot, as between a platform's requests
        status, headers, body = d.slot_raw(req["method"], req["path"], req.get("data", "").encode(),
                                           req.get("headers"))
        problems += check_web_answer("request %d (%s %s)" % (k + 1, req["method"], req["path"]), status, headers,
                                     body, req)
    if "stderr_contains" in case:
        problems += check_streams(*d.streams(), {"stderr_contains": case["stderr_contains"]})
    return problems


def run_openfaas_case(d, case, n):
    """The slot claimed as the function: a directory with handler.py, as the template builds it."""
    d.api("DELETE", "/v1/slots/%d" % d.port)
    problems = []
    if not case.get("unclaimed"):
        function = os.path.join(d.fission_root, "openfaas-%d" % n)
        write_files(function, case["files"])
        status, body = d.api("POST", "/v1/slots/claim", {"openfaas": {"code": function, "main": "handler.handle"}})
        if status != 200:
            return ["claim as the function: %s %s" % (status, body)]
    for k, req in enumerate(case.get("requests", [])):
        status, headers, body = d.slot_raw(req["method"], req["path"], req.get("data", "").encode(),
                                           req.get("headers"))
        problems += check_web_answer("request %d (%s %s)" % (k + 1, req["method"], req["path"]), status,
                                     headers, body, req)
    return problems


def run_knative_case(d, case):
    d.api("DELETE", "/v1/slots/%d" % d.port)
    problems = []
    for k, req in enumerate(case.get("requests", [])):
        headers = dict(req.get("headers", {}))
        data = req.get("data", "").encode()
        if "json_body" in req:
            data = json.dumps(req["json_body"]).encode()
            headers.setdefault("Content-Type", "application/json")
        status, got_headers, body = d.slot_raw(req["method"], req["path"], data, headers)
        problems += check_web_answer("request %d (%s %s)" % (k + 1, req["method"], req["path"]), status,
                                     got_headers, body, req)
    return problems


def run_case(d, case):
    d.api("DELETE", "/v1/slots/%d" % d.port)
    status, body = d.api("POST", "/v1/slots/claim", {"env": case.get("claim_env", {})})
    if status != 200:
        return ["claim: %s %s" % (status, body)]
    status, body = d.slot("POST", "/init", init_body(case))
    want = {"status": case.get("init_status", 200)}
    if "init_error" in case:
        want["error"] = case["init_error"]
    if "init_error_contains" in case:
        want["error_contains"] = case["init_error_contains"]
    problems = check_answer("init", status, body, want)
    if case.get("reinit"):
        status, body = d.slot("POST", "/init", init_body(case))
        problems += check_answer("second init", status, body,
                                 {"status": 403, "error": "Cannot initialize the action more than once."})
    for k, run in enumerate(case.get("runs", [])):
        status, body = d.slot("POST", "/run", expand(run["body"]))
        problems += check_answer("run %d" % (k + 1), status, body, run)
    if "streams" in case:
        problems += check_streams(*d.streams(), case["streams"])
    return problems


def main(prewarmd, cases_path):
    with open(cases_path, encoding="utf-8") as f:
        suite = json.load(f)
    d = Daemon(prewarmd, suite.get("template", "python3"))
    failed = 0
    try:
        write_files(os.path.join(d.fission_root, "pkg"), suite.get("package", {}))
        for n, case in enumerate(suite["cases"]):
            platform = suite["platform"]
            problems = (run_fission_case(d, suite, case) if platform == "fission" else
                        run_knative_case(d, case) if platform == "knative" else
                        run_openfaas_case(d, case, n) if platform == "openfaas" else run_case(d, case))
            note = " (deviation: %s)" % case["deviation"] if "deviation" in case else ""
            print("%s %s: %s%s" % ("ok  " if not problems else "FAIL", suite["platform"], case["name"], note))
            for p in problems:
                print("       " + p)
            failed += bool(problems)
        print("%d passed, %d failed" % (len(suite["cases"]) - failed, failed))
        if failed:
            print("--- daemon log (last 20 lines)\n" + d.tail())
    finally:
        d.stop()
        shutil.rmtree(d.work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
