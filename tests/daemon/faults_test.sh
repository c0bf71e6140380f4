#!/usr/bin/env bash
# prewarmd under faults: instances that crash, hang or run out of memory mid-invocation, a corrupt
# template (the pool's cold-start fallback serves), a daemon killed with SIGKILL (its successor reaps
# what it left), SIGTERM with a request in flight (it finishes) and with one that outlasts the grace
# period (it fails), each stop checked for leftovers.
# Usage: faults_test.sh PREWARMD SOURCE_DIR
prewarmd=$1 source=$2
. "$(dirname "$0")/lib.sh"

cat >"$code_dir/faulty.py" <<'PY'
import os, time
def main(args):
    if args.get("crash"):
        os._exit(3)
    if args.get("sleep"):
        time.sleep(args["sleep"])
    if args.get("hog"):
        hog = bytearray(args["hog"] << 20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
    return {"ok": True, "slept": args.get("sleep", 0)}
PY
faulty="{\"code\": \"file://$code_dir/faulty.py\", \"timeout_ms\": 1500}"

in_flight() {
        curl -s --unix-socket "$sock" http://prewarmd/healthz |
                python3 -c 'import json, sys; print(json.load(sys.stdin)["in_flight"])'
}
wait_in_flight() {
        for _ in $(seq 1 200); do [ "$(in_flight)" -ge 1 ] && return 0; sleep 0.05; done
        return 1
}

start_daemon || exit 1
build_template
api PUT /v1/functions/faulty -d "$faulty";       expect "register" 201 ''
api POST /v1/functions/faulty/invoke -d '{}';    expect "healthy invocation" 200 '"ok":true'
api POST /v1/functions/faulty/invoke -d '{"crash": 1}'
expect "instance crashes mid-invocation: 502" 502 'died \(exit status 3\)'
api POST /v1/functions/faulty/invoke -d '{}';    expect "next invocation on a new instance" 200 '"ok":true'
api POST /v1/functions/faulty/invoke -d '{"sleep": 30}'
expect "instance hangs: 504 at the function's timeout" 504 'timed out after 1500 ms'
api POST /v1/functions/faulty/invoke -d '{}';    expect "next invocation after the timeout" 200 '"ok":true'
api PUT /v1/functions/hog -d "{\"code\": \"file://$code_dir/faulty.py\", \"timeout_ms\": 60000}"
api POST /v1/functions/hog/invoke -d '{"hog": 1024}'
expect "instance exceeds its memory limit: 502" 502 'memory limit'
api POST /v1/functions/hog/invoke -d '{}';       expect "next invocation after the OOM kill" 200 '"ok":true'
# A function's own memory_mb below the template's 256 MiB: 128 MiB is then too much.
api PUT /v1/functions/small -d "{\"code\": \"file://$code_dir/faulty.py\", \"memory_mb\": 96}"
api POST /v1/functions/small/invoke -d '{"hog": 128}'
expect "the function's memory_mb holds: 502" 502 'memory limit of 96 MiB'
api POST /v1/functions/hog/invoke -d '{"hog": 128}'; expect "the template's limit allows 128 MiB" 200 '"ok":true'
api GET /metrics
for kind in crash timeout memory; do
        grep -Eq "prewarm_errors_total\{kind=\"$kind\"\} [1-9]" "$work/body" && ok "error kind $kind counted" || fail "error kind $kind"
done

# ---------------------------------------------------------------- SIGTERM with a request in flight
curl -s --unix-socket "$sock" -o "$work/slow.body" -w '%{http_code}' -X POST \
        http://prewarmd/v1/functions/faulty/invoke -d '{"sleep": 1}' >"$work/slow.code" &
client=$!
wait_in_flight && ok "slow request in flight" || fail "slow request never in flight"
api POST '/v1/functions/faulty/invoke?async=1' -d '{"sleep": 1}'
expect "an asynchronous activation in flight too" 202 'activation_id'
async_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["activation_id"])' "$work/body")
stop_daemon
wait "$client"
grep -q "activation $async_id of faulty: done" "$log" && ok "SIGTERM: the asynchronous activation finished first" ||
        fail "asynchronous activation cut short"
[ "$(cat "$work/slow.code")" = 200 ] && grep -q '"slept":1' "$work/slow.body" &&
        ok "SIGTERM: the request in flight finished with 200" || fail "in-flight request: $(cat "$work/slow.code") $(cat "$work/slow.body")"
[ "$stop_status" -eq 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $stop_status"

# ---------------------------------------------------------------- 503 on an open connection
# A keep-alive connection opened before SIGTERM gets 503 while a slow request finishes; new
# connections are refused once the daemon stopped listening.
port=$(free_port)
start_daemon --listen "127.0.0.1:$port" || exit 1
python3 - "$port" "$daemon_pid" "$(tcp_token)" >"$work/stop503.out" 2>&1 <<'PY'
import http.client, json, os, signal, socket, sys, threading, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
auth = {"Authorization": "Bearer " + sys.argv[3]}
slow = {}
def run_slow():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    # Long enough to outlast the steps below on a busy machine (the hog function allows 60 s).
    c.request("POST", "/v1/functions/hog/invoke", body='{"sleep": 4}', headers=auth)
    r = c.getresponse()
    slow["status"] = r.status
    r.read()
keep = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
keep.request("GET", "/healthz", headers=auth)
keep.getresponse().read()
t = threading.Thread(target=run_slow)
t.start()
while True:   # until the slow request is in flight
    keep.request("GET", "/healthz", headers=auth)
    if json.loads(keep.getresponse().read())["in_flight"] >= 1:
        break
os.kill(pid, signal.SIGTERM)
while True:   # until the daemon stopped listening
    try:
        socket.create_connection(("127.0.0.1", port)).close()
    except (ConnectionRefusedError, ConnectionResetError):
        break             # reset: accepted into the backlog just before the listener closed
keep.request("POST", "/v1/functions/faulty/invoke", body="{}", headers=auth)
r = keep.getresponse()
print("open-connection", r.status, r.getheader("Retry-After"), r.read().decode().strip())
t.join()
print("slow", slow.get("status"))
PY
grep -q '^open-connection 503 1 {"error":"prewarmd is shutting down' "$work/stop503.out" &&
        ok "stopping: a request on an open connection gets 503 + Retry-After" || { fail "503 while stopping"; cat "$work/stop503.out"; }
grep -q '^slow 200$' "$work/stop503.out" && ok "stopping: the slow request still finished" || fail "slow request while stopping"
# (The script sent SIGTERM; again, in case it died before it could, so that the wait ends.)
pid=$daemon_pid; kill -TERM "$pid" 2>/dev/null; wait "$pid"; daemon_pid=; check_clean "$pid"

# ---------------------------------------------------------------- SIGTERM after the grace period
start_daemon --grace 1 || exit 1
api PUT /v1/functions/slow -d "{\"code\": \"file://$code_dir/faulty.py\", \"timeout_ms\": 60000}"
curl -s --unix-socket "$sock" -o "$work/stuck.body" -w '%{http_code}' -X POST \
        http://prewarmd/v1/functions/slow/invoke -d '{"sleep": 50}' >"$work/stuck.code" &
client=$!
wait_in_flight && ok "stuck request in flight" || fail "stuck request never in flight"
start=$(date +%s)
stop_daemon
wait "$client"
[ "$(cat "$work/stuck.code")" = 502 ] && ok "grace period over: the stuck request failed with 502" ||
        fail "stuck request: $(cat "$work/stuck.code") $(cat "$work/stuck.body")"
[ $(( $(date +%s) - start )) -lt 40 ] && ok "shutdown did not wait for the stuck handler" || fail "shutdown waited"
grep -q "grace period over" "$log" && ok "grace period logged" || fail "grace period not logged"

# ---------------------------------------------------------------- SIGKILL, then a successor
start_daemon || exit 1
api POST /v1/functions/faulty/invoke -d '{}';    expect "warm instance before the crash" 200 '"ok":true'
old=$daemon_pid
kill -KILL "$old"; wait "$old" 2>/dev/null; daemon_pid=
# Its instances' agents see their channel close and exit on their own, sooner or later; their
# cgroups (and a restore's mounts) stay until someone removes them.
if { ls /sys/fs/cgroup/prewarm /sys/fs/cgroup/memory/prewarm 2>/dev/null || true; } | grep -qE -- "-$old-[0-9]+\$"; then
        ok "the killed daemon left its instances' cgroups behind"
else fail "the killed daemon left no cgroups (nothing to reap)"; fi
mkdir -p "$state/templates/.build-ghost/images"   # what a build killed with its daemon leaves
start_daemon || exit 1
grep -q "reaped [1-9][0-9]* object(s) a crashed predecessor left behind" "$log" && ok "successor reaped its predecessor" ||
        fail "no reaping logged"
[ ! -e "$state/templates/.build-ghost" ] && ok "unfinished build removed" || fail "unfinished build left"
mv "$sock" "$sock.keep"  # check_clean looks for a socket of the dead daemon
check_clean "$old"
mv "$sock.keep" "$sock"
api POST /v1/functions/faulty/invoke -d '{}';    expect "registrations survived the crash" 200 '"ok":true'
stop_daemon

# ---------------------------------------------------------------- corrupt template
corrupt_template python3
start_daemon || exit 1
api POST /v1/functions/faulty/invoke -d '{}';    expect "corrupt template: the invocation still succeeds" 200 '"ok":true'
api GET /metrics
grep -Eq 'prewarm_pool_cold_start_fallbacks_total [1-9]' "$work/body" && ok "cold-start fallback counted" ||
        { fail "cold-start fallback not counted"; grep cold_start "$work/body"; }
grep -q "falling back to a cold start" "$log" && ok "cold-start fallback logged" || fail "fallback not logged"
stop_daemon
finish
