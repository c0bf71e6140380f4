#!/usr/bin/env bash
# prewarmd's native API as a client drives it with curl: templates, functions (file, http, inline,
# zip, pinned), sync and async invocations, instances, metrics, errors with their status codes,
# persistence across a restart, the TCP listener with a bearer token, and a clean stop.
# Usage: api_test.sh PREWARMD SOURCE_DIR
prewarmd=$1 source=$2
. "$(dirname "$0")/lib.sh"

cat >"$code_dir/echo.py" <<'PY'
import os
def main(args):
    print("echo got", sorted(args))
    return {"args": args, "color": os.environ.get("COLOR")}
def other(args):
    return {"entry": "other"}
PY
mkdir -p "$work/zip" && cat >"$work/zip/__main__.py" <<'PY'
from helper import twice
def main(args):
    return {"twice": twice(args.get("n", 1))}
PY
printf 'def twice(n):\n    return 2 * n\n' >"$work/zip/helper.py"
(cd "$work/zip" && python3 -c 'import zipfile; z = zipfile.ZipFile("../app.zip", "w"); z.write("__main__.py"); z.write("helper.py"); z.close()')
digest=sha256:$(sha256sum "$code_dir/echo.py" | cut -d' ' -f1)

# The code server below is on loopback, which a daemon refuses unless told otherwise.
# --max-code-mb 1: request bodies up to the 8 MiB floor, which the oversized-body checks cross.
start_daemon --fetch-allow 127.0.0.0/8 --max-code-mb 1 || exit 1
api GET /healthz;                               expect "healthz" 200 '"status":"ok"'
api GET /v1/templates;                          expect "no templates yet" 200 '^\{"templates":\[\]\}'
api PUT /v1/functions/early -d "{\"code\": \"file://$code_dir/echo.py\"}"
expect "register a function before its template is built" 201 '"name":"early"'
api POST /v1/functions/early/invoke -d '{}';    expect "invoke it: template not built" 409 'template python3 is not built'
api DELETE /v1/functions/early;                 expect "remove it" 200 ''
build_template
api GET /v1/templates/python3;                  expect "template status" 200 '"runtime":"Python 3'
api GET /v1/templates;                          expect "template list" 200 '"name":"python3"'
api GET /v1/templates/nosuch;                   expect "unknown template" 404 '"error":"template .nosuch. is not built'
api POST /v1/templates/nosuch/build;            expect "build without a definition" 404 '"error":'
api POST '/v1/templates/bad%20name/build';      expect "build with an invalid name" 400 'invalid template name'

# ---------------------------------------------------------------- functions
api PUT /v1/functions/echo -d "{\"code\": \"file://$code_dir/echo.py\", \"env\": {\"COLOR\": \"blue\"}, \"timeout_ms\": 5000}"
expect "register a function" 201 '"name":"echo".*"template":"python3"'
api PUT /v1/functions/echo -d "{\"code\": \"file://$code_dir/echo.py\", \"env\": {\"COLOR\": \"green\"}, \"digest\": \"$digest\"}"
expect "update it, with a digest pin" 200 "\"digest\":\"$digest\""
api GET /v1/functions/echo;                     expect "read it" 200 '"COLOR":"green"'
api GET /v1/functions;                          expect "list functions" 200 '^\{"functions":\[\{.*"name":"echo"'
api POST /v1/functions/echo/invoke -d '{"name": "sync"}'
expect "invoke" 200 '^\{"args":\{"name":"sync"\},"color":"green"\}$'
src=$(header X-Prewarm-Source)
if [[ $src =~ ^(zygote|clone|restore|cold-start)$ ]] && [ -n "$(header X-Prewarm-Specialize-Us)" ] &&
   [ -n "$(header X-Prewarm-Invoke-Us)" ] && [ -n "$(header X-Prewarm-Restore-Us)" ]; then
        ok "first invocation: timing headers, source $src"
else fail "first invocation headers"; cat "$work/headers"; fi
api POST /v1/functions/echo/invoke -d '{"name": "again"}'
expect "invoke again" 200 '"name":"again"'
if [ "$(header X-Prewarm-Source)" = warm ]; then ok "second invocation is warm"; else fail "second source: $(header X-Prewarm-Source)"; fi
api POST /v1/functions/echo/invoke;             expect "no body means {}" 200 '^\{"args":\{\},'

api PUT /v1/functions/inline -d "{\"source\": $(json_string "$code_dir/echo.py"), \"main\": \"other\"}"
expect "inline source" 201 "\"code\":\"file://$state/blobs/sha256-[0-9a-f]{64}\\.py\",\"digest\":\"sha256:"
api POST /v1/functions/inline/invoke -d '{}';   expect "invoke inline source, other entry point" 200 '"entry":"other"'
api PUT /v1/functions/zipped -d "{\"zip\": \"$(base64 -w 76 "$work/app.zip" | sed 's/$/\\n/' | tr -d '\n')\"}"
expect "inline zip (base64 with line breaks)" 201 '"code":"file://.*\.zip"'
api POST /v1/functions/zipped/invoke -d '{"n": 21}'; expect "invoke the zip with a helper module" 200 '^\{"twice":42\}$'
ls "$state/blobs/" | grep -qE '^sha256-[0-9a-f]{64}\.zip$' && ok "zip in the blob cache" || fail "zip in the blob cache"

http_port=$(free_port)
python3 -m http.server --bind 127.0.0.1 "$http_port" --directory "$code_dir" >/dev/null 2>&1 &
http_pid=$!
extra_cleanup="kill $http_pid 2>/dev/null"
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$http_port/echo.py" && break; sleep 0.05; done
api PUT /v1/functions/fetched -d "{\"code\": \"http://127.0.0.1:$http_port/echo.py\", \"digest\": \"$digest\"}"
expect "http code URI with a pin" 201 '"code":"http://'
api POST /v1/functions/fetched/invoke -d '{"via": "http"}'; expect "invoke code fetched over http" 200 '"via":"http"'
api PUT /v1/functions/fetched404 -d "{\"code\": \"http://127.0.0.1:$http_port/nope.py\"}"
expect "http URI that is not there" 422 'HTTP 404'
kill "$http_pid"; wait "$http_pid" 2>/dev/null; extra_cleanup=

# ---------------------------------------------------------------- bad input
zeros=$(printf '0%.0s' {1..64})
api PUT /v1/functions/bad -d '{"code": "file:///x.py"';                 expect "malformed JSON" 400 '"error":"malformed JSON'
api PUT /v1/functions/bad -d '[1]';                                       expect "body not an object" 400 '"error":'
api PUT /v1/functions/bad -d "{\"code\": \"file://$code_dir/echo.py\", \"colour\": 1}"; expect "unknown field" 400 'left unpacked: colour'
api PUT /v1/functions/bad -d '{"code": "ftp://host/f.py"}';              expect "unsupported URI" 400 'unsupported code URI'
api PUT /v1/functions/bad -d '{"code": "relative/f.py"}';                expect "relative path" 400 'unsupported code URI'
api PUT /v1/functions/bad -d "{\"code\": \"file://$code_dir/nope.py\"}";     expect "missing blob" 422 'cannot read .*nope.py'
api PUT /v1/functions/bad -d "{\"code\": \"file://$code_dir/echo.py\", \"digest\": \"sha256:$zeros\"}"
expect "digest mismatch" 422 'does not match the pinned sha256:0000'
grep -q "$(sha256sum "$code_dir/echo.py" | cut -c1-16)" "$work/body" && fail "the mismatch told the file's digest" ||
        ok "the mismatch does not tell the file's digest"
api PUT /v1/functions/bad -d "{\"code\": \"file://$code_dir/echo.py\", \"digest\": \"md5:x\"}"; expect "malformed pin" 400 'not a digest'
api PUT /v1/functions/bad -d "{\"source\": \"x\", \"code\": \"file://$code_dir/echo.py\"}"; expect "code given twice" 400 'exactly once'
api PUT /v1/functions/bad -d '{"zip": "not base64!!"}';                 expect "zip that is not base64" 400 'base64'
api PUT /v1/functions/bad -d "{\"code\": \"file://$code_dir/echo.py\", \"env\": {\"A=B\": \"x\"}}"; expect "bad env name" 400 'env entry'
api PUT /v1/functions/bad -d "{\"code\": \"file://$code_dir/echo.py\", \"timeout_ms\": -1}"; expect "bad timeout" 400 'timeout_ms'
api PUT '/v1/functions/.hidden' -d "{\"code\": \"file://$code_dir/echo.py\"}"; expect "invalid function name" 400 'invalid function name'
api GET /v1/functions/bad;                                                expect "nothing registered by bad requests" 404 'no function'
api POST /v1/functions/nosuch/invoke -d '{}';                             expect "unknown function" 404 "no function named 'nosuch'"
api POST /v1/functions/echo/invoke -d '[1, 2]';                           expect "argument not an object" 400 'must be a JSON object'
api POST /v1/functions/echo/invoke -d '{"a": ';                           expect "argument malformed" 400 'malformed JSON'
head -c $((8 * 1024 * 1024 + 1)) /dev/zero >"$work/big"
api POST /v1/functions/echo/invoke --data-binary @"$work/big";           expect "oversized body" 413 'larger than the limit'
api POST /v1/functions/echo/invoke -H 'Transfer-Encoding: chunked' --data-binary @"$work/big"
expect "oversized chunked body" 413 'larger than the limit'
api GET /v1/nothing;                                                      expect "unknown endpoint" 404 'no such endpoint'
api PATCH /v1/functions/echo;                                             expect "wrong method" 405 'not allowed'

# ---------------------------------------------------------------- async, instances, metrics
api POST '/v1/functions/echo/invoke?async=1' -d '{"mode": "async"}'
expect "async invocation accepted" 202 '^\{"activation_id":"[0-9a-f]{32}"\}'
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["activation_id"])' "$work/body")
for _ in $(seq 1 200); do
        api GET "/v1/activations/$id"
        grep -q '"status":"running"' "$work/body" || break
        sleep 0.05
done
expect "async result polled" 200 '"status":"success".*"result":\{"args":\{"mode":"async"\}'
grep -q '"logs":"echo got' "$work/body" && ok "activation record has the logs" || fail "activation logs"
api GET /v1/activations/0123456789abcdef0123456789abcdef; expect "unknown activation" 404 'no activation'

api GET /v1/instances;                          expect "instances" 200 '"function":"echo","state":"idle"'
inst=$(python3 -c 'import json,sys; print([i["id"] for i in json.load(open(sys.argv[1]))["instances"] if i.get("function") == "echo"][0])' "$work/body")
api DELETE "/v1/instances/$inst";               expect "destroy an idle instance" 200 "\"deleted\":\"$inst\""
api DELETE /v1/instances/nosuch-1-1;            expect "destroy an unknown instance" 404 'no instance'
api POST /v1/functions/echo/invoke -d '{}';     expect "invoke after its instance was destroyed" 200 '"args"'

api GET /metrics
expect "metrics" 200 '^prewarm_stage_seconds_bucket\{stage="invoke",le="0.001"\} [0-9]+'
for m in 'prewarm_stage_seconds_count\{stage="restore"\}' 'prewarm_stage_seconds_count\{stage="specialize"\}' \
         'prewarm_pool_zygote_hits_total [0-9]' 'prewarm_pool_zygote_misses_total [0-9]' 'prewarm_pool_warm_hits_total [1-9]' \
         'prewarm_pool_cold_start_fallbacks_total [0-9]' 'prewarm_pool_instances\{state="warm"\}' \
         'prewarm_invocations_total\{protocol="api",source="warm"\} [1-9]' 'prewarm_errors_total\{kind="not_found"\} [1-9]' \
         'prewarmd_build_info\{version="[0-9.]+",criu_version="[0-9]+\.[0-9]+\.[0-9]+",kernel="[^"]+"\} 1'; do
        grep -Eq "$m" "$work/body" && ok "metric $m" || fail "metric $m"
done
# The exposition passes Prometheus' own lint (Debian's prometheus package: promtool).
if promtool check metrics <"$work/body" >"$work/promtool.out" 2>&1; then ok "promtool check metrics finds nothing"; else
        fail "promtool check metrics"; cat "$work/promtool.out"; fi

api DELETE /v1/functions/zipped;                expect "remove a function" 200 '"deleted":"zipped"'
api POST /v1/functions/zipped/invoke -d '{}';   expect "removed function is unknown" 404 'no function'
api DELETE /v1/functions/zipped;                expect "remove it again" 404 'no function'

# ---------------------------------------------------------------- restart, second daemon, TCP
"$prewarmd" --state-dir "$state" 2>"$work/second.log"
[ $? -eq 1 ] && grep -q "another prewarmd serves this state dir" "$work/second.log" && ok "second daemon on the same state dir refused" ||
        { fail "second daemon"; cat "$work/second.log"; }
stop_daemon
[ "$stop_status" -eq 0 ] && ok "SIGTERM: exit status 0" || fail "SIGTERM: exit status $stop_status"
grep -q "stopped" "$log" && ok "stop logged" || fail "stop logged"

port=$(free_port)
printf 'secret-token-0123456789\n' >"$work/token"
start_daemon --listen "127.0.0.1:$port" --token-file "$work/token" || exit 1
url GET "http://127.0.0.1:$port/v1/functions/echo"
expect "TCP without the token" 401 'bearer token'
url GET "http://127.0.0.1:$port/v1/functions/echo" -H 'Authorization: Bearer wrong-token-0123456789'
expect "TCP with a wrong token" 401 'bearer token'
url GET "http://127.0.0.1:$port/v1/functions/echo" -H 'Authorization: Bearer secret-token-0123456789'
expect "registration survived the restart (TCP, token)" 200 '"COLOR":"green"'
ls "$state/blobs/" | grep -q '\.zip$' && fail "the removed zip function's blob survived the restart" ||
        ok "blob cache: the removed function's blob collected at the restart"
ls "$state/blobs/" | grep -q '\.py$' && ok "blob cache: the inline function's blob kept" || fail "inline blob collected"
url POST "http://127.0.0.1:$port/v1/functions/inline/invoke" -H 'Authorization: Bearer secret-token-0123456789' -d '{}'
expect "invoke after the restart" 200 '"entry":"other"'
api GET /v1/functions;                         expect "the unix socket wants the token too" 401 'bearer token'
api GET /healthz;                              expect "probes need no token" 200 '"status":"ok"'
[ "$(stat -c %a "$sock")" = 660 ] && ok "socket mode 0660" || fail "socket mode $(stat -c %a "$sock")"
stop_daemon

# TCP without --token-file: a token made at first start, required from loopback too; the unix socket
# is guarded by its mode (and --socket-group) alone then.
port=$(free_port)
start_daemon --listen "127.0.0.1:$port" || exit 1
[ "$(stat -c %a "$state/api.token")" = 600 ] && ok "TCP token made 0600 in the state dir" ||
        fail "token file mode $(stat -c %a "$state/api.token" 2>/dev/null)"
grep -q "bearer token in $state/api.token" "$log" && ok "the log says where the token is" || fail "token not logged"
url GET "http://127.0.0.1:$port/v1/functions";  expect "loopback TCP without the token" 401 'bearer token'
url GET "http://127.0.0.1:$port/v1/functions" -H "Authorization: Bearer $(tcp_token)"
expect "loopback TCP with the made token" 200 '"functions"'
url GET "http://127.0.0.1:$port/readyz";         expect "a kubelet's readiness probe needs no token" 200 '"ready"'
api GET /healthz;                               expect "the unix socket without a token" 200 '"status":"ok"'
first=$(tcp_token)
stop_daemon
start_daemon --listen "127.0.0.1:$port" || exit 1
[ "$(tcp_token)" = "$first" ] && ok "the token is kept across restarts" || fail "token changed on restart"
stop_daemon
touch "$work/not-a-socket"
"$prewarmd" --state-dir "$state" --socket "$work/not-a-socket" 2>"$work/notsock.log"
[ $? -eq 1 ] && [ -f "$work/not-a-socket" ] && grep -q "not a socket" "$work/notsock.log" &&
        ok "a --socket path naming a regular file is left alone" || { fail "--socket over a file"; cat "$work/notsock.log"; }
finish
