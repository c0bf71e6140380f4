#!/usr/bin/env bash
# What prewarmd refuses a caller (tried as an unprivileged local user would): code from outside its
# code roots by any trick, its server fetching from loopback or private addresses (redirects too),
# leaking a refused file's content or digest, a flood of slow connections shutting others out,
# refused uploads filling the blob cache, text that is not text, and memory limits no instance can
# run in.
# Usage: guards_test.sh PREWARMD SOURCE_DIR
prewarmd=$1 source=$2
. "$(dirname "$0")/lib.sh"

cat >"$code_dir/ok.py" <<'PY'
def main(args):
    return {"ok": True}
PY
secret=$work/secret.py   # outside the code root, and root-only like the issue's /etc/shadow
printf 'vm = 1\nTOP_SECRET_CONTENT = "hunter2"\n' >"$secret"
chmod 600 "$secret"
secret_digest=$(sha256sum "$secret" | cut -d' ' -f1)

start_daemon --max-connections-per-address 64 --request-deadline 4 --blob-cache-mb 1 || exit 1
build_template

# ---------------------------------------------------------------- code only from the code roots
api PUT /v1/functions/ok -d "{\"code\": \"file://$code_dir/ok.py\"}"; expect "code beneath the code root" 201 ''
refused() { # NAME URI [DIGEST]: refused with 403, telling nothing of the file
        local body="{\"code\": \"$2\"${3:+, \"digest\": \"sha256:$3\"}}"
        api PUT /v1/functions/sneaky -d "$body"
        if [ "$code" = 403 ] && ! grep -qE "hunter2|TOP_SECRET|$secret_digest|NameError|[0-9]+ bytes" "$work/body"; then
                ok "$1: refused, and nothing of the file told"
        else
                fail "$1 (status $code)"; cat "$work/body"; echo
        fi
}
refused "a file outside the roots" "file://$secret"
refused "the same with a wrong digest" "file://$secret" "$(printf '0%.0s' {1..64})"
refused "/etc/shadow" "file:///etc/shadow"
refused "a plain path outside" "$secret"
refused "'..' out of the root" "file://$code_dir/../secret.py"
refused "'%2e%2e' out of the root" "file://$code_dir/%2e%2e/secret.py"
ln -s "$secret" "$code_dir/link.py"
refused "a symlink out of the root" "file://$code_dir/link.py"
ln -s /proc/self/root/etc/hostname "$code_dir/magic.py"
refused "a magic link" "file://$code_dir/magic.py"
mkdir -p "$code_dir/bound" && mount --bind "$work" "$code_dir/bound"
refused "a bind mount inside the root" "file://$code_dir/bound/secret.py"
umount "$code_dir/bound"
refused "the state dir" "file://$state/functions.json"
api GET /v1/functions/sneaky;                   expect "nothing registered by the refusals" 404 ''

# ---------------------------------------------------------------- no server-side fetches
http_port=$(free_port 2)
python3 - "$http_port" "$code_dir" >/dev/null 2>&1 <<'PY' &
import functools, http.server, sys, threading
port, root = int(sys.argv[1]), sys.argv[2]
class Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self):   # a public-looking server that sends the fetch to loopback
        self.send_response(302)
        self.send_header("Location", "http://127.0.0.1:%d/ok.py" % port)
        self.end_headers()
files = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
threading.Thread(target=http.server.ThreadingHTTPServer(("127.0.0.1", port), files).serve_forever, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.2", port + 1), Redirect).serve_forever()
PY
http_pid=$!
extra_cleanup="kill $http_pid 2>/dev/null"
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$http_port/ok.py" && break; sleep 0.05; done
api PUT /v1/functions/ssrf -d "{\"code\": \"http://127.0.0.1:$http_port/ok.py\"}"
expect "fetch from loopback refused" 403 'refused: 127.0.0.1 is a loopback address'
api PUT /v1/functions/ssrf -d "{\"code\": \"http://[::1]:$http_port/ok.py\"}"
expect "fetch from IPv6 loopback refused" 403 'refused'
api PUT /v1/functions/ssrf -d "{\"code\": \"http://169.254.169.254/latest/meta-data\"}"
expect "fetch from link-local (cloud metadata) refused" 403 'link-local'
api PUT /v1/functions/ssrf -d "{\"code\": \"http://10.1.2.3:$http_port/ok.py\"}"
expect "fetch from a private address refused" 403 'private'
stop_daemon
# With 127.0.0.2 opened, the redirect to 127.0.0.1 is refused all the same: every address a fetch
# connects to is checked.
start_daemon --fetch-allow 127.0.0.2/32 --max-connections-per-address 64 --request-deadline 4 --blob-cache-mb 1 || exit 1
api PUT /v1/functions/ssrf -d "{\"code\": \"http://127.0.0.2:$((http_port + 1))/ok.py\"}"
expect "a redirect from an allowed address to loopback refused" 403 'refused: 127.0.0.1 is a loopback address'
stop_daemon
start_daemon --fetch-allow 127.0.0.0/8 --max-connections-per-address 64 --request-deadline 4 --blob-cache-mb 1 || exit 1
api PUT /v1/functions/ssrf -d "{\"code\": \"http://127.0.0.2:$((http_port + 1))/ok.py\"}"
expect "the same redirect with loopback opened by --fetch-allow" 201 '"code":"http://127.0.0.2'
kill "$http_pid"; wait "$http_pid" 2>/dev/null; extra_cleanup=
api DELETE /v1/functions/ssrf;                  expect "remove it" 200 ''

# ---------------------------------------------------------------- text, limits
api GET "/v1/functions/a%FFb";                  expect "invalid UTF-8 in the path" 400 'not valid UTF-8'
api GET "/v1/functions/a%01b";                  expect "a control character in the path" 400 'control character'
api GET /healthz -H $'X-Note: a\x01b';          expect "a control character in a header" 400 'header X-Note'
api PUT /v1/functions/ok2 -d $'{"code": "file://'"$code_dir"$'/ok.py", "main": "ma\xffin"}'
expect "invalid UTF-8 in a JSON string" 400 'malformed JSON'
api PUT /v1/functions/ok2 -d "{\"code\": \"file://$code_dir/ok.py\", \"main\": \"ma\\u0007in\"}"
expect "a control character in a JSON string" 400 'control character'
api GET "/v1/functions/%1b%5b31mred";           expect "a terminal escape in the path" 400 'control character'
grep -qF '\x1b[31mred' "$log" && ! grep -q $'\x1b' "$log" && ok "the log escapes control characters" ||
        fail "control characters reached the log raw"
api PUT /v1/functions/tiny -d "{\"code\": \"file://$code_dir/ok.py\", \"memory_mb\": 1}"
expect "memory_mb below what the template needs" 400 'below the [0-9]+ MiB an instance of template python3 needs'
api PUT /v1/functions/fits -d "{\"code\": \"file://$code_dir/ok.py\", \"memory_mb\": 128}"
expect "memory_mb above it" 201 ''
api POST /v1/functions/fits/invoke -d '{}';     expect "and it runs" 200 '"ok":true'

# ---------------------------------------------------------------- the blob cache
big=$(python3 -c 'print("def main(args):\n    return {}\n" + "# " + "x" * (6 << 20))' | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')
for i in $(seq 1 20); do
        printf '{"source": %s, "colour": %d}' "$big" "$i" >"$work/put.json"
        api PUT "/v1/functions/refused$i" --data-binary @"$work/put.json"
        [ "$code" = 400 ] || break
done
expect "20 refused 6 MiB uploads" 400 'left unpacked: colour'
[ -z "$(ls -A "$state/blobs")" ] && ok "refused uploads left nothing in the blob cache" ||
        { fail "blobs left: $(ls "$state/blobs" | wc -l)"; du -sh "$state/blobs"; }
for i in 1 2 3; do   # each ~400 KiB; the cache is bounded at 1 MiB
        python3 -c "print('def main(args):\n    return {\"n\": $i}\n# ' + 'y' * (400 << 10))" >"$work/inline$i.py"
        printf '{"source": %s}' "$(json_string "$work/inline$i.py")" >"$work/put.json"
        api PUT "/v1/functions/inline$i" --data-binary @"$work/put.json"
        expect "inline function $i" 201 ''
done
api DELETE /v1/functions/inline1;               expect "remove inline1 (its blob unused now)" 200 ''
api DELETE /v1/functions/inline2;               expect "remove inline2" 200 ''
python3 -c "print('def main(args):\n    return {\"n\": 4}\n# ' + 'z' * (400 << 10))" >"$work/inline4.py"
printf '{"source": %s}' "$(json_string "$work/inline4.py")" >"$work/put.json"
api PUT /v1/functions/inline4 --data-binary @"$work/put.json"; expect "inline function 4" 201 ''
n=$(ls "$state/blobs" | wc -l)
[ "$n" -le 2 ] && ok "the cache evicted unused blobs to stay in its bound ($n left)" || fail "$n blobs in a 1 MiB cache"
api POST /v1/functions/inline3/invoke -d '{}';  expect "a used blob is never evicted" 200 '"n":3'
api GET /metrics
grep -Eq '^prewarm_blob_cache_evictions_total [1-9]' "$work/body" && ok "evictions in the metrics" || fail "no eviction metric"

# ---------------------------------------------------------------- slow connections
port=$(free_port)
stop_daemon
state_sock=$sock sock=$work/api.sock
start_daemon --socket "$sock" --socket-group nogroup || exit 1
[ "$(stat -c '%a %U %G' "$work/api.sock")" = "660 root nogroup" ] && ok "--socket-group: the socket is root:nogroup 0660" ||
        fail "socket is $(stat -c '%a %U %G' "$work/api.sock")"
curl -s --unix-socket "$work/api.sock" -o /dev/null -w '%{http_code}' http://d/healthz | grep -q 200 &&
        ok "served on that socket" || fail "not served on --socket"
stop_daemon
sock=$state_sock
"$prewarmd" --state-dir "$state" --code-root "$code_dir" --socket-group no-such-group-here 2>"$work/group.log"
[ $? -eq 1 ] && grep -q "no such group" "$work/group.log" && ok "an unknown --socket-group refused" ||
        { fail "unknown socket group"; cat "$work/group.log"; }
"$prewarmd" --state-dir "$state" --code-root "$work" 2>"$work/root.log"
[ $? -eq 1 ] && grep -q "holds the state dir" "$work/root.log" && ok "a code root holding the state dir refused" ||
        { fail "code root over the state dir"; cat "$work/root.log"; }

start_daemon --listen "127.0.0.1:$port" --max-connections-per-address 64 --request-deadline 4 || exit 1
ulimit -n 8192 2>/dev/null
timeout 60 python3 - "$port" "$(tcp_token)" >"$work/slow.out" 2>&1 <<'PY'
import resource, socket, sys, time, urllib.request
port, token = int(sys.argv[1]), sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
# 2,000 connections from 40 loopback addresses, each sending its request a byte at a time.
slow = []
for i in range(2000):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i % 40), 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    slow.append(s)
request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() + b"\r\n\r\n"
t0 = time.time()
def trickle(k):
    for s in slow:
        try:
            s.send(request[k:k + 1])
        except OSError:
            pass
trickle(0)
time.sleep(1)
trickle(1)
# A normal client is served meanwhile.
t = time.time()
r = urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/healthz" % port,
                                                  headers={"Authorization": "Bearer " + token}), timeout=10)
print("normal", r.status, "%.3f" % (time.time() - t))
# Trickling does not extend the deadline: by then the server has closed every slow connection.
k = 2
while time.time() - t0 < 8:
    trickle(k)
    k += 1
    time.sleep(1)
closed = 0
for s in slow:
    s.setblocking(True)
    s.settimeout(0.01)
    try:
        data = s.recv(64)
        closed += data == b""
    except (ConnectionResetError, BrokenPipeError):
        closed += 1
    except socket.timeout:
        pass
    s.close()
print("closed", closed, "of", len(slow), "after", "%.1f" % (time.time() - t0), "s")
PY
cat "$work/slow.out" | sed 's/^/     /'
grep -q '^normal 200' "$work/slow.out" && ok "a normal request served beside 2,000 slow connections" ||
        fail "normal request not served"
closed=$(awk '/^closed/ {print $2}' "$work/slow.out")
[ "${closed:-0}" -ge 1990 ] && ok "slow connections closed at the deadline ($closed of 2000)" ||
        fail "slow connections still open: ${closed:-?} of 2000 closed"
api GET /metrics
grep -Eq '^prewarm_request_deadline_closes_total [1-9]' "$work/body" && ok "deadline closes counted" || fail "deadline metric"
# The slow connections must all be gone before the cap is counted (a busy machine closes the last
# ones late): only this request's own connection may be open.
for i in $(seq 1 300); do
        api GET /metrics
        open_n=$(awk '/^prewarm_connections / {print $2}' "$work/body")
        [ "$open_n" -le 1 ] && break
        sleep 0.1
done
echo "     connections open before the cap is counted: $open_n (after $i looks)"
timeout 30 python3 - "$port" >"$work/cap.out" 2>&1 <<'PY'
import select, socket, sys, time
port = int(sys.argv[1])
conns = []
for i in range(100):   # over the cap of 64 from one address
    s = socket.create_connection(("127.0.0.1", port))
    conns.append(s)
time.sleep(1)
# All at once, well inside the request deadline of 4 s: a timeout per socket, one after the
# other, took long enough on a busy machine that the deadline closed the last admitted ones too.
readable, _, _ = select.select(conns, [], [], 0)
closed = 0
for s in readable:
    try:
        closed += s.recv(1) == b""
    except ConnectionResetError:
        closed += 1
print("refused", closed)
PY
refused_n=$(awk '/^refused/ {print $2}' "$work/cap.out")
[ "${refused_n:-0}" -ge 30 ] && [ "${refused_n:-0}" -le 40 ] && ok "connections over the cap per address closed ($refused_n of 100)" ||
        { fail "per-address cap: ${refused_n:-?} of 100 closed"; cat "$work/cap.out"; }
api GET /metrics
grep -Eq '^prewarm_connections_refused_total\{cap="per_address"\} [1-9]' "$work/body" && ok "per-address refusals counted" ||
        fail "per-address metric"
stop_daemon
finish
