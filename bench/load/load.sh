#!/usr/bin/env bash
# Load test of prewarmd: CONNECTIONS concurrent HTTP/1.1 keep-alive clients (wrk) invoke one
# registered function for DURATION seconds through the daemon's TCP listener. Reports throughput
# and latency percentiles; fails when any request failed, was answered wrongly, or was lost (every
# invocation wrk saw answered must be one the daemon counted, and the daemon must count no error).
# Usage: load.sh PREWARMD [DURATION_S=20] [CONNECTIONS=64]; $LOAD_DAEMON_ARGS go to prewarmd
# (e.g. LOAD_DAEMON_ARGS="--max-invocations 0").
set -uo pipefail
prewarmd=$1 duration=${2:-20} connections=${3:-64}
here=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "load: wrk is not installed (scripts/setup installs it)"; exit 1; }
# shellcheck source=lib.sh
. "$here/lib.sh" load

for port in $(shuf -i 10000-32000 -n 20); do  # below the ephemeral range
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
done
# shellcheck disable=SC2086 # word splitting of the extra options is the point
mkdir -p "$work/code"
"$prewarmd" --state-dir "$state" --code-root "$work/code" --listen "127.0.0.1:$port" ${LOAD_DAEMON_ARGS:-} 2>"$work/daemon.log" &
pid=$!
for _ in $(seq 1 200); do api http://d/healthz >/dev/null && break; sleep 0.05; done
[ "$(api -X POST http://d/v1/templates/python3/build)" = 200 ] || die "template build failed: $(cat "$work/body")"
PREWARM_TOKEN=$(cat "$state/api.token") && export PREWARM_TOKEN || die "no TCP token in $state/api.token"
cat >"$work/code/hello.py" <<'PY'
def main(args):
    return {"greeting": "hello " + str(args.get("name")), "n": args.get("n")}
PY
[ "$(api -X PUT http://d/v1/functions/load -d "{\"code\": \"file://$work/code/hello.py\", \"timeout_ms\": 10000}")" = 201 ] ||
        die "registration failed: $(cat "$work/body")"
[ "$(api -X POST http://d/v1/functions/load/invoke -d '{}')" = 200 ] || die "warm-up failed: $(cat "$work/body")"

served() {
        api http://d/metrics >/dev/null
        awk '/^prewarm_invocations_total\{protocol="api"/ { n += $2 } END { print n + 0 }' "$work/body"
}
# The pool grows to one warm instance per connection first (restores while requests wait); the
# measured run then sees the steady state. The warm-up's own numbers are reported too.
warmup=$(( duration < 3 ? duration : 3 ))
wrk -t2 -c"$connections" -d"${warmup}s" --timeout 10s -s "$here/post.lua" \
        "http://127.0.0.1:$port/v1/functions/load/invoke" >"$work/warmup.out" 2>&1 || die "wrk warm-up failed"
echo "load: warm-up ${warmup}s: $(grep '^{"requests"' "$work/warmup.out")"
before=$(served)
echo "load: $connections connections, ${duration}s, POST /v1/functions/load/invoke on 127.0.0.1:$port ($(nproc) CPUs)"
wrk -t2 -c"$connections" -d"${duration}s" --timeout 10s --latency -s "$here/post.lua" \
        "http://127.0.0.1:$port/v1/functions/load/invoke" >"$work/wrk.out" 2>&1 || die "wrk failed: $(cat "$work/wrk.out")"
result=$(grep '^{"requests"' "$work/wrk.out") || die "no result from wrk: $(cat "$work/wrk.out")"
served=$(( $(served) - before ))
errors=$(awk -F' ' '/^prewarm_errors_total/ { n += $2 } END { print n + 0 }' "$work/body")
instances=$(curl -s --unix-socket "$sock" http://d/v1/instances | grep -o '"function":"load"' | wc -l)
kill -TERM "$pid"; wait "$pid"; status=$?; pid=

python3 - "$result" "$served" "$errors" "$connections" "$instances" "$status" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
served, errors, conns, instances, status = map(int, sys.argv[2:])
print("load: %(requests)d requests in %(duration_s).1f s = %(rps).0f req/s" % r)
print("load: latency ms  p50 %(p50_ms).2f  p90 %(p90_ms).2f  p99 %(p99_ms).2f  p99.9 %(p999_ms).2f  max %(max_ms).2f  mean %(mean_ms).2f" % r)
print("load: daemon served %d invocations in the measured run, with %d warm instances of the function at the end" % (served, instances))
failures = r["non_2xx"] + r["wrong_body"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
# wrk drops the answers of requests in flight when its time is up, at most one per connection at
# each end of the measured run.
lost = not (r["requests"] <= served <= r["requests"] + 2 * conns)
print("load: failed %d (non-2xx %d, wrong body %d, socket errors %d/%d/%d, timeouts %d), daemon errors %d, lost %s, daemon exit %d"
      % (failures, r["non_2xx"], r["wrong_body"], r["connect_errors"], r["read_errors"], r["write_errors"],
         r["timeouts"], errors, "yes" if lost else "no", status))
print("load: json " + json.dumps(dict(r, connections=conns, served=served, daemon_errors=errors)))
sys.exit(1 if failures or errors or lost or status else 0)
PY
