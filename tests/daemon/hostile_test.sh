#!/usr/bin/env bash
# The hostile function (tests/hostile/probe.py) through prewarmd: its native API, an OpenWhisk
# slot, and the pool's cold-start fallback. Every attempt it makes to reach the host, the daemon or
# another function must end with the errno probe.py expects, whichever path handed it the code.
# Usage: hostile_test.sh PREWARMD SOURCE_DIR
prewarmd=$1 source=$2
. "$(dirname "$0")/lib.sh"
cp "$source/tests/hostile/probe.py" "$code_dir/probe.py"
probe=$code_dir/probe.py

# check_probe NAME FILE [KEY]: the probe's answer in FILE (under KEY when the platform wraps it)
# ran every attempt, and each ended as expected.
check_probe() {
        local name=$1 file=$2 key=${3:-}
        if python3 - "$file" "$key" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
if sys.argv[2]:
    body = body[sys.argv[2]]
results, expected, failures = body["results"], body["expected"], body["failures"]
for name in failures:
    print("     probe %s: %s, expected %s" % (name, results.get(name), expected[name]))
status = body["status"]
ok = (len(expected) >= 50 and len(results) == len(expected) and not failures
      and results["open_by_handle_at_host_root"] == "EPERM" and results["remount_usr_rw"] == "EPERM"
      and status["CapEff"] == "0" * 16 and status["CapBnd"] == "0" * 16
      and status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
      and 1879048192 <= body["uid"] < 1879048192 + 65536)
sys.exit(0 if ok else 1)
PY
        then ok "$name: every attempt ended as expected"; else fail "$name"; head -c 3000 "$file"; echo; fi
}

# The pid of the idle instance of function NAME, as the daemon lists it.
instance_pid() {
        api GET /v1/instances
        python3 -c 'import json, sys
for i in json.load(open(sys.argv[1]))["instances"]:
    if i.get("function") == sys.argv[2]:
        print(i["pid"]); break' "$work/body" "$1"
}

port=$(free_port)
start_daemon --openwhisk-ports "$port-$port" || exit 1
build_template

# ---------------------------------------------------------------- native API
api PUT /v1/functions/keeper -d "{\"code\": \"file://$probe\"}"; expect "register a sibling" 201 ''
api POST /v1/functions/keeper/invoke -d '{"mode": "write_secret", "path": "/tmp/secret-of-keeper"}'
expect "the sibling keeps a secret in its /tmp" 200 '"written"'
keeper=$(instance_pid keeper)
[ -n "$keeper" ] && ok "the sibling's pid is $keeper" || fail "no pid for the sibling"
api PUT /v1/functions/probe -d "{\"code\": \"file://$probe\"}"; expect "register the probe" 201 ''
args="{\"sibling_pid\": ${keeper:-0}, \"sibling_file\": \"/tmp/secret-of-keeper\", \"state_dir\": \"$state\"}"
api POST /v1/functions/probe/invoke -d "$args"; expect "invoke the probe" 200 '"results"'
check_probe "native API" "$work/body"
api POST /v1/functions/keeper/invoke -d '{"mode": "kill_all"}'; expect "kill(-1) from a function" 200 '"kill_all"'
api GET /healthz; expect "the daemon survived kill(-1)" 200 ''
api POST /v1/functions/probe/invoke -d "$args"; expect "the probe survived its sibling's kill(-1)" 200 '"results"'

# ---------------------------------------------------------------- OpenWhisk slot
slot=http://127.0.0.1:$port
url POST $slot/init -d "{\"value\": {\"name\": \"probe\", \"main\": \"main\", \"code\": $(json_string "$probe")}}"
expect "init the probe in an OpenWhisk slot" 200 '"ok":true'
url POST $slot/run -d "{\"value\": $args}"; expect "run it" 200 '"results"'
check_probe "OpenWhisk slot" "$work/body"
stop_daemon

# ---------------------------------------------------------------- cold-start fallback
corrupt_template python3
start_daemon || exit 1
api POST /v1/functions/probe/invoke -d "$args"; expect "invoke the probe on a corrupt template" 200 '"results"'
[ "$(header X-Prewarm-Source)" = cold-start ] && ok "served by the cold-start fallback" ||
        fail "source $(header X-Prewarm-Source), expected cold-start"
check_probe "cold-start fallback" "$work/body"
stop_daemon
finish
