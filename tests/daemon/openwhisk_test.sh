#!/usr/bin/env bash
# prewarmd's action slots as OpenWhisk's invoker and runtime tests drive them (/init, /run, log
# markers, activation context, status codes and error bodies), Knative's single entry, Fission's
# environment contract, and the slot API an invoker plugin uses.
# Usage: openwhisk_test.sh PREWARMD SOURCE_DIR
prewarmd=$1 source=$2
. "$(dirname "$0")/lib.sh"

cat >"$work/action.py" <<'PY'
import os, sys
def main(args):
    print("stdout line", args.get("n"))
    print("stderr line", file=sys.stderr)
    if args.get("crash"):
        os._exit(7)
    if args.get("raise"):
        raise RuntimeError("told to raise")
    if args.get("scalar"):
        return 42
    ctx = {k: os.environ.get(k) for k in ("__OW_ACTIVATION_ID", "__OW_ACTION_NAME", "__OW_NAMESPACE",
                                           "__OW_DEADLINE", "__OW_API_KEY", "__OW_EXTRA", "INIT_ENV")}
    return {"args": args, "ctx": ctx}
def niam(args):
    return {"entry": "niam", "delimiter": args.get("delimiter", "") + " \u2603 " + args.get("delimiter", "")}
PY
printf 'def main(args)\n    return {}\n' >"$work/syntax.py"
mkdir -p "$work/zip" && printf 'def main(args):\n    return {"from": "zip"}\n' >"$work/zip/__main__.py"
(cd "$work/zip" && python3 -c 'import zipfile; z = zipfile.ZipFile("../action.zip", "w"); z.write("__main__.py"); z.close()')
action=$(json_string "$work/action.py")

base=$(free_port 3)
p1=$base p2=$((base + 1)) p3=$((base + 2))
mkdir -p "$work/fission"
start_daemon --openwhisk-ports "$p1-$p3" --fission-root "$work/fission" || exit 1
build_template
s1=http://127.0.0.1:$p1 s2=http://127.0.0.1:$p2 s3=http://127.0.0.1:$p3

# ---------------------------------------------------------------- OpenWhisk: /init and /run
url POST $s1/run -d '{"value": {}}';                 expect "run before init" 403 '"error":'
url POST $s1/init -d '{"value": {"name": "a", "main": "main", "code": ""}}'
expect "init without code" 403 '^\{"error":"Missing main/no code to execute."\}$'
url POST $s1/init -d '{"value": {}}';                expect "init without a value" 403 'Missing main/no code to execute.'
url POST $s1/init -d "{\"value\": {\"name\": \"act\", \"main\": \"main\", \"code\": $action, \"binary\": false, \"env\": {\"INIT_ENV\": \"from-init\"}}}"
expect "init" 200 '^\{"ok":true\}$'
url POST $s1/init -d "{\"value\": {\"name\": \"act\", \"main\": \"main\", \"code\": $action}}"
expect "second init" 403 '^\{"error":"Cannot initialize the action more than once."\}$'

deadline=$(( $(date +%s%3N) + 60000 ))
url POST $s1/run -d "{\"value\": {\"n\": 1}, \"activation_id\": \"a0000000000000000000000000000001\", \"action_name\": \"/guest/act\", \"namespace\": \"guest\", \"deadline\": $deadline, \"api_key\": \"user:pass\", \"extra\": {\"k\": 1}}"
expect "run with the context (numeric deadline)" 200 '"args":\{"n":1\}'
for kv in '"__OW_ACTIVATION_ID":"a0000000000000000000000000000001"' '"__OW_ACTION_NAME":"/guest/act"' \
          '"__OW_NAMESPACE":"guest"' "\"__OW_DEADLINE\":\"$deadline\"" '"__OW_API_KEY":"user:pass"' \
          '"__OW_EXTRA":"{\"k\":1}"' '"INIT_ENV":"from-init"'; do
        grep -qF -- "$kv" "$work/body" && ok "handler sees $kv" || { fail "handler sees $kv"; cat "$work/body"; }
done
url POST $s1/run -d "{\"value\": {\"n\": 2}, \"activation_id\": \"a0000000000000000000000000000002\", \"deadline\": \"$deadline\"}"
expect "run with a string deadline" 200 "\"__OW_DEADLINE\":\"$deadline\""
grep -q '"__OW_ACTIVATION_ID":"a0000000000000000000000000000002"' "$work/body" && ok "context renewed per activation" || fail "context renewed"
grep -q '"__OW_API_KEY":null' "$work/body" && ok "context of the previous activation cleared" || fail "stale context kept"
url POST $s1/run -d '{"value": "a string"}'
expect "value neither a dictionary nor an array" 404 'The action did not receive a dictionary or an array as an argument.'
url POST $s1/run -d '{"value": {"scalar": true}}'
expect "result not a dictionary" 502 '^\{"error":"The action did not return a dictionary."\}$'
url POST $s1/run -d '{"value": {"raise": true}}'
expect "handler raises" 502 '"error":".*RuntimeError: told to raise'
url POST $s1/run -d '{"value": {"crash": true}}'
expect "instance crashes mid-activation" 502 '"error":"The action did not produce a valid response and exited unexpectedly'
url POST $s1/run -d '{"value": {"n": 3}}';           expect "run after the crash: instance replaced" 200 '"n":3'
big=$(head -c 1100000 /dev/zero | tr '\0' 'x')
printf '{"value": {"big": "%s"}}' "$big" >"$work/big.json"
url POST $s1/run --data-binary @"$work/big.json"
[ "$code" = 200 ] && [ "$(stat -c %s "$work/body")" -gt 1100000 ] && ok "payload over 1 MB" || fail "payload over 1 MB ($code)"
url POST $s1/run -d 'not json';                     expect "malformed run" 400 '"error":'

out=$state/slots/$p1/stdout err=$state/slots/$p1/stderr
marker=XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX
grep -q "^stdout line 1$" "$out" && ok "handler output in the slot's stdout log" || fail "stdout log"
awk -v m=$marker '/^stdout line 1$/ { seen = 1 } seen && $0 == m { print "ordered"; exit }' "$out" | grep -q ordered &&
        ok "output before the activation's marker" || fail "marker order"
runs=$(grep -c "^$marker$" "$out")
[ "$runs" -ge 8 ] && [ "$runs" = "$(grep -c "^$marker$" "$err")" ] && ok "one marker per activation on stdout and stderr ($runs)" ||
        fail "markers: stdout $runs, stderr $(grep -c "^$marker$" "$err")"
grep -q "told to raise" "$err" && ok "error in the slot's stderr log" || fail "stderr log"

# Another entry point and unicode (OpenWhisk's canonical runtime tests).
url POST $s2/init -d "{\"value\": {\"name\": \"uni\", \"main\": \"niam\", \"code\": $action}}"; expect "init with main=niam" 200 '"ok":true'
url POST $s2/run -d '{"value": {"delimiter": "❄"}}'; expect "unicode round trip" 200 '"delimiter":"❄ ☃ ❄"'
api DELETE /v1/slots/$p2;                           expect "reset a slot" 200 '"state":"free"'
[ ! -s "$state/slots/$p2/stdout" ] && ok "reset slot's logs start afresh" || fail "reset logs"

url POST $s2/init -d "{\"value\": {\"name\": \"bad\", \"code\": $(json_string "$work/syntax.py")}}"
expect "load failure" 502 '"error":"Initialization has failed due to: .*SyntaxError'
url POST $s2/init -d "{\"value\": {\"name\": \"zipped\", \"main\": \"main\", \"binary\": true, \"code\": \"$(base64 -w0 "$work/action.zip")\"}}"
expect "binary (zip) init after a failed one" 200 '"ok":true'
url POST $s2/run -d '{"value": {}}';                expect "run the zip" 200 '^\{"from":"zip"\}$'
url POST $s2/init -d '{"value": {"name": "x", "binary": true, "code": "!!!"}}'; expect "init on a used slot" 403 'more than once'

# A 7 MB zip (over the old 8 MiB body limit once in base64; OpenWhisk takes 48 MB) that reads a
# file beside its __main__.py by a relative path: its working directory is the unpacked archive.
python3 - "$work/big.zip" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("__main__.py", "def main(args):\n    return {'beside': open('data/beside.txt').read(), 'big': len(open('filler.bin', 'rb').read())}\n")
    z.writestr("data/beside.txt", "found")
    z.writestr("filler.bin", os.urandom(7 << 20))
PY
printf '{"value": {"name": "big", "main": "main", "binary": true, "code": "%s"}}' "$(base64 -w0 "$work/big.zip")" >"$work/big-init.json"
api DELETE /v1/slots/$p2
url POST $s2/init --data-binary @"$work/big-init.json"; expect "7 MB zip action" 200 '"ok":true'
url POST $s2/run -d '{"value": {}}';                expect "zip action reads beside its main, relative to its directory" 200 '^\{"beside":"found","big":7340032\}$'
api DELETE /v1/slots/$p2
url POST $s2/init -d "{\"value\": {\"name\": \"raiser\", \"code\": $action}}"
url POST $s2/run -d '{"value": {"raise": "boom"}}'
grep -q "of instance\|python3-[0-9]*-[0-9]" "$work/body" && fail "error body names an instance: $(cat "$work/body")" ||
        ok "error bodies name no instance"

# ---------------------------------------------------------------- Knative single entry
url POST $s3/ -d "{\"init\": {\"name\": \"kn\", \"main\": \"main\", \"code\": $action}}"; expect "Knative init" 200 '"ok":true'
url POST $s3/ -d '{"activation": {"activation_id": "k1", "namespace": "kns", "deadline": "0"}, "value": {"n": 9}}'
expect "Knative run, the request's fields beside the value" 200 '"args":\{"n":9,"__ow_method":"POST","__ow_headers":\{'
grep -q '"__OW_NAMESPACE":"kns"' "$work/body" && ok "Knative activation context" || fail "Knative context"
api DELETE /v1/slots/$p3;                           expect "reset the Knative slot" 200 '"state":"free"'
url POST $s3/ -d "{\"init\": {\"name\": \"kn\", \"main\": \"main\", \"code\": $action}, \"activation\": {\"activation_id\": \"k2\"}, \"value\": {\"n\": 10}}"
expect "Knative init and run in one request" 200 '"__OW_ACTIVATION_ID":"k2"'

# ---------------------------------------------------------------- slot API, instances
api GET /v1/slots;                                  expect "list slots" 200 "\"port\":$p1,.*\"state\":\"openwhisk\",.*\"action\":\"act\""
api GET /v1/instances;                              expect "slot instances listed" 200 "\"owner\":\"slot $p1\""
slot_inst=$(python3 -c 'import json,sys; print([i["id"] for i in json.load(open(sys.argv[1]))["instances"] if i.get("owner","").startswith("slot") and "id" in i][0])' "$work/body")
api DELETE "/v1/instances/$slot_inst";              expect "slot instance not deletable through the pool" 409 'belongs to an OpenWhisk slot'
api DELETE /v1/slots/$p1; api DELETE /v1/slots/$p2; api DELETE /v1/slots/$p3
api POST /v1/slots/claim;                           expect "claim a slot" 200 '"claimed":true'
api POST /v1/slots/claim; api POST /v1/slots/claim; api POST /v1/slots/claim
expect "no free slot left" 503 'no free action slot'
api DELETE /v1/slots/1;                             expect "reset an unknown slot" 404 'no slot'

# ---------------------------------------------------------------- Fission
printf 'import os\nfrom flask import request\ndef handler():\n    return {"fission": request.get_json(silent=True), "path": request.path, "fn": os.environ.get("FISSION_FUNCTION_NAME")}\n' >"$work/fission/hello.py"
url POST $s1/ -d '{}';                              expect "Fission request before specialize" 500 'Generic container'
url GET $s1/healthz;                                expect "Fission readiness probe" 200 ''
url POST $s1/v2/specialize -d "{\"filepath\": \"$work/fission\", \"functionName\": \"hello.handler\", \"url\": \"/route\", \"FunctionMetadata\": {\"name\": \"hello-fn\", \"namespace\": \"default\"}, \"envVersion\": 2}"
expect "Fission specialize (directory package; url is the route, not code)" 200 ''
url POST $s1/ -H 'Content-Type: application/json' -d '{"q": 1}'; expect "Fission request" 200 '^\{"fission":\{"q":1\},"fn":"hello-fn","path":"/"\}$'
url GET $s1/some/route;                             expect "Fission request on another path, no body" 200 '"path":"/some/route"'
url POST $s1/v2/specialize -d "{\"filepath\": \"$work/fission\", \"functionName\": \"hello.handler\"}"
expect "second Fission specialize" 409 'already specialized'
url POST $s2/v2/specialize -d "{\"filepath\": \"$work/fission/hello.py\", \"functionName\": \"handler\"}"
expect "Fission specialize (single file)" 200 ''
url POST $s2/ -H 'Content-Type: application/json' -d '{"r": 2}'; expect "Fission request, single file" 200 '"fission":\{"r":2\}'
url POST $s3/v2/specialize -d "{\"filepath\": \"$work/fission/nope\", \"functionName\": \"x.y\"}"
expect "Fission package missing" 400 'deployment package'
url POST $s3/v2/specialize -d "{\"filepath\": \"$work/action.py\", \"functionName\": \"main\"}"
expect "Fission package outside --fission-root" 403 'not under the Fission package root'
ln -s "$work/action.py" "$work/fission/escape.py"
url POST $s3/v2/specialize -d "{\"filepath\": \"$work/fission/escape.py\", \"functionName\": \"main\"}"
expect "Fission package symlinked out of the root" 403 'not under the Fission package root'
url POST $s3/v2/specialize -d "{\"filepath\": \"$work/fission\", \"functionName\": \"../action.main\"}"
expect "Fission functionName that climbs out" 400 'is not MODULE.FUNCTION'
url GET $s3/healthz;                                expect "refused specializations leave the slot free" 200 ''

api GET /metrics
grep -Eq 'prewarm_invocations_total\{protocol="openwhisk",source="warm"\} [1-9]' "$work/body" && ok "OpenWhisk invocations counted" || fail "openwhisk metric"
grep -Eq 'prewarm_invocations_total\{protocol="fission",source="warm"\} [1-9]' "$work/body" && ok "Fission invocations counted" || fail "fission metric"
grep -Eq 'prewarm_openwhisk_slots\{state="initialized"\} 2' "$work/body" && ok "slot gauge" || fail "slot gauge"
stop_daemon
finish
