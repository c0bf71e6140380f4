#!/usr/bin/env bash
# Burst of first invocations through prewarmd: N functions are registered, then each is invoked
# once, all at the same time, so that every request needs a new instance. Twice: on a daemon whose
# functions were just registered, and on a daemon just restarted with them (functions.json).
# Reports the latencies and where each instance came from (X-Prewarm-Source); fails when a request
# fails. Usage: burst.sh PREWARMD [FUNCTIONS=32] [TEMPLATE=python3] [SETTLE_S=3]; SETTLE_S is how
# long the daemon has after registering or starting before the burst; $BURST_DAEMON_ARGS go to
# prewarmd (e.g. BURST_DAEMON_ARGS="--zygotes 1-4").
set -uo pipefail
prewarmd=$1 n=${2:-32} template=${3:-python3} settle=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh" burst

start() {
        # shellcheck disable=SC2086 # word splitting of the extra options is the point
        "$prewarmd" --state-dir "$state" --code-root "$work/code" ${BURST_DAEMON_ARGS:-} 2>>"$work/daemon.log" &
        pid=$!
        for _ in $(seq 1 200); do api http://d/healthz >/dev/null && return; sleep 0.05; done
        die "the daemon did not answer"
}
stop() { kill -TERM "$pid"; wait "$pid"; pid=; }

# Every request at once; prints "MS SOURCE" per request, or fails.
burst() {
        local round=$1 clients=()
        for k in $(seq 1 "$n"); do
                curl -s --unix-socket "$sock" -D "$work/h.$round.$k" -o "$work/b.$round.$k" \
                        -w '%{http_code} %{time_total}\n' -X POST "http://d/v1/functions/f$k/invoke" \
                        -d "{\"k\": $k}" >"$work/t.$round.$k" &
                clients+=($!)
        done
        wait "${clients[@]}"
        for k in $(seq 1 "$n"); do
                read -r code secs <"$work/t.$round.$k"
                [ "$code" = 200 ] && grep -q "\"k\":$k" "$work/b.$round.$k" ||
                        die "f$k answered $code: $(cat "$work/b.$round.$k")"
                src=$(tr -d '\r' <"$work/h.$round.$k" | awk -F': ' 'tolower($1) == "x-prewarm-source" { print $2 }')
                echo "$(awk -v s="$secs" 'BEGIN { printf "%.1f", s * 1000 }') $src"
        done
}

report() {
        python3 - "$1" "$2" <<'PY'
import sys
label, path = sys.argv[1], sys.argv[2]
rows = [line.split() for line in open(path) if line.strip()]
ms = sorted(float(r[0]) for r in rows)
sources = {}
for r in rows:
    sources[r[1] if len(r) > 1 else "?"] = sources.get(r[1] if len(r) > 1 else "?", 0) + 1
def q(p):
    i = p * (len(ms) - 1)
    lo = int(i)
    return ms[lo] + (ms[min(lo + 1, len(ms) - 1)] - ms[lo]) * (i - lo)
print("burst: %s: %d first invocations at once: p50 %.1f ms, p90 %.1f, max %.1f; sources %s"
      % (label, len(ms), q(0.5), q(0.9), ms[-1], ", ".join("%s %d" % kv for kv in sorted(sources.items()))))
PY
}

mkdir -p "$work/code"
cat >"$work/code/echo.py" <<'PY'
def main(args):
    return args
PY
start
[ "$(api -X POST "http://d/v1/templates/$template/build")" = 200 ] || die "template build failed: $(cat "$work/body")"
for k in $(seq 1 "$n"); do
        [ "$(api -X PUT "http://d/v1/functions/f$k" -d "{\"code\": \"file://$work/code/echo.py\", \"template\": \"$template\"}")" = 201 ] ||
                die "registering f$k failed: $(cat "$work/body")"
done
sleep "$settle"
burst new >"$work/new.txt" || exit 1
report "newly registered ($n functions, $(nproc) CPUs)" "$work/new.txt"
stop
start
sleep "$settle"
burst restarted >"$work/restarted.txt" || exit 1
report "daemon restarted with them" "$work/restarted.txt"
stop
