#!/usr/bin/env bash
# Pull time and first restore of templates through a local registry (docs/fleet.md's figures).
# Starts Debian's docker-registry on 127.0.0.1, pushes each template from STATE (built there),
# then on a fresh "node" state dir pulls it RUNS times and runs a function on the pulled copy,
# printing push, pull (median) and first-run times. Removes everything it made.
# Usage: bench/fleet/pull.sh PREWARM STATE RUNS TEMPLATE...
set -uo pipefail
prewarm=$1 state=$2 runs=$3
shift 3
work=$(mktemp -d /tmp/prewarm-pull.XXXXXX)
port=$(shuf -i 20000-30000 -n 1)
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null; wait $registry 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.05; done
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf 'echo() {\n' >/dev/null
printf 'def main(args):\n    return {"ok": True}\n' >"$work/f.py"
printf 'function main(args) { return {ok: true}; }\n' >"$work/f.js"
printf '%-14s %10s %10s %10s %12s %14s\n' template images_MiB layer_MiB push_ms pull_ms_p50 first_run_ms
for t in "$@"; do
        ref=127.0.0.1:$port/prewarm/$t:bench
        images=$(du -sm "$state/templates/$t/images" | cut -f1)
        t0=$(date +%s%N)
        "$prewarm" --state-dir "$state" template push --plain-http "$t" "$ref" >/dev/null || exit 1
        t1=$(date +%s%N)
        layer=$(find "$work/registry" -name data -size +1M -newer "$work/registry.yml" -printf '%s\n' | sort -n | tail -1)
        pulls=()
        for _ in $(seq 1 "$runs"); do
                rm -rf "$work/node"
                sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
                a=$(date +%s%N)
                "$prewarm" --state-dir "$work/node" template pull --plain-http "$ref" >/dev/null || exit 1
                b=$(date +%s%N)
                pulls+=("$(ms "$a" "$b")")
        done
        code=$work/f.py
        [ -f "$state/templates/$t/rootfs/prewarm/agent.js" ] && code=$work/f.js
        a=$(date +%s%N)
        "$prewarm" --state-dir "$work/node" run --template "$t" --code "file://$code" >/dev/null || exit 1
        b=$(date +%s%N)
        printf '%-14s %10s %10s %10s %12s %14s\n' "$t" "$images" "$(( ${layer:-0} / 1048576 ))" "$(ms "$t0" "$t1")" \
                "$(printf '%s\n' "${pulls[@]}" | median)" "$(ms "$a" "$b")"
        layer=
done
