#!/usr/bin/env bash
# prewarm bench end to end: builds the python3 template in a scratch state dir, runs a short bench
# with JSON and SVG output and checks their shape (never the timings), its errors, and that nothing
# it started outlives it, after a normal end and after a Ctrl-C.
# Usage: bench_test.sh PREWARM SOURCE_DIR
set -uo pipefail
prewarm=$1 source=$2
work=$(mktemp -d /tmp/prewarm-bench.XXXXXX)
export PREWARM_STATE_DIR=$work/state
# Inherited by the bench and whatever it forks without a clean environment (CRIU): lets the leak
# check tell this test's processes from those of anyone else on the machine.
export PREWARM_BENCH_TEST_MARK=$work
passed=0 failed=0
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

# Processes of this test: the marker in their environment, or the exec / fork_zygote runtimes,
# which get the template's own environment (their command lines name the source tree's files).
our_processes() {
        local pid
        for pid in $(ls /proc | grep -E '^[0-9]+$'); do
                [ "$pid" = $$ ] || [ "$pid" = "$BASHPID" ] && continue
                if grep -qz "^PREWARM_BENCH_TEST_MARK=$work\$" /proc/$pid/environ 2>/dev/null ||
                   tr '\0' ' ' 2>/dev/null </proc/$pid/cmdline |
                        grep -qE "$source/(criu-templates/python3/agent\.py|bench/fork_zygote\.py)"; then
                        echo "$pid $(tr '\0' ' ' 2>/dev/null </proc/$pid/cmdline)"
                fi
        done
}

# Nothing of bench run $1 (its pid) may be left: processes, mounts, cgroups, run directories.
nothing_left() {
        local what=$1 bench_pid=$2 left
        sleep 0.2
        left=$(our_processes)
        if [ -z "$left" ]; then ok "$what: no processes left"; else fail "$what: no processes left"; echo "$left"; fi
        if grep -q "$work" /proc/self/mountinfo; then fail "$what: no mounts left"; else ok "$what: no mounts left"; fi
        # Instance cgroups are named TEMPLATE-PID-N after the process that restored them.
        left=$(find /sys/fs/cgroup -maxdepth 3 -type d -path '*prewarm*' -name "*-$bench_pid-*" 2>/dev/null)
        if [ -z "$left" ]; then ok "$what: no cgroups left"; else fail "$what: no cgroups left"; echo "$left"; fi
        if [ -z "$(ls -A "$PREWARM_STATE_DIR/run" 2>/dev/null)" ]; then ok "$what: run dir empty"; else fail "$what: run dir empty"; fi
}

# Errors, before the template exists.
"$prewarm" bench --template python3 --runs 1 >"$work/out" 2>"$work/err"
status=$?
check "not built: status 1" [ "$status" -eq 1 ]
check "not built: says how to build" grep -q "template python3 is not built: run prewarm template build python3" "$work/err"
"$prewarm" bench --template python3 --modes exec,bogus >"$work/out" 2>"$work/err"
check "unknown mode" grep -q "unknown mode 'bogus'" "$work/err"
"$prewarm" bench --template python3 --runs 0 >"$work/out" 2>"$work/err"
check "bad --runs" grep -q -- "--runs wants a number" "$work/err"
"$prewarm" bench --template python3 stray >"$work/out" 2>"$work/err"
check "stray argument" grep -q "unexpected argument 'stray'" "$work/err"
"$prewarm" bench >"$work/out" 2>"$work/err"
check "missing --template" grep -q -- "--template is required" "$work/err"
"$prewarm" bench --template python3 --handler "$work/none.py" >"$work/out" 2>"$work/err"
check "missing handler" grep -q "handler $work/none.py" "$work/err"
"$prewarm" bench --template python3 --json "$work/no/such/dir/b.json" >"$work/out" 2>"$work/err"
check "unwritable --json, before any run" grep -q "cannot write the JSON $work/no/such/dir/b.json" "$work/err"

if "$prewarm" template build python3 >"$work/out" 2>"$work/err"; then ok "build python3"; else fail "build python3"; cat "$work/err"; fi

# A short run of every mode.
"$prewarm" bench --template python3 --runs 3 --concurrency 2 --density 4 --json "$work/bench.json" --plot "$work/bench.svg" \
        >"$work/out" 2>"$work/err" &
bench_pid=$!
wait $bench_pid
status=$?
if [ "$status" -eq 0 ]; then ok "bench runs"; else fail "bench runs (status $status)"; tr '\r' '\n' <"$work/err" | tail -5; fi
for mode in exec criu_cli prewarm prewarm_restore prewarm_cold prewarm_cold_noring fork_zygote warm; do
        check "table has $mode" grep -qE "^$mode +[0-9]" "$work/out"
done
check "progress on stderr" grep -q "run 3 of 3" "$work/err"
if python3 - "$work/bench.json" <<'PY'
import json, math, sys
doc = json.load(open(sys.argv[1]))
modes = ["exec", "criu_cli", "prewarm", "prewarm_restore", "prewarm_cold", "prewarm_cold_noring", "fork_zygote", "warm"]
restoring = {"criu_cli", "prewarm", "prewarm_restore", "prewarm_cold", "prewarm_cold_noring"}
def num(v): return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
assert doc["template"] == "python3" and doc["runs"] == 3 and doc["concurrency"] == 2, doc
assert sorted(doc["modes"]) == sorted(modes), sorted(doc["modes"])
for name in modes:
    m = doc["modes"][name]
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
        assert num(m[key]) and m[key] > 0, (name, key, m.get(key))
    assert m["p50_ms"] <= m["p90_ms"] <= m["p99_ms"] <= m["max_ms"], (name, m)
    assert m["samples"] == 3, (name, m["samples"])
    assert m["stages"] and all(num(s["p50_ms"]) for s in m["stages"].values()), (name, m["stages"])
    assert num(m["memory"]["rss_mib"]) and m["memory"]["rss_mib"] > 0, (name, m.get("memory"))
    assert num(m["memory"]["pss_mib"]) and m["memory"]["pss_mib"] > 0, (name, m.get("memory"))
    assert num(m["ratios"]["speedup_vs_exec"]) and num(m["ratios"]["speedup_vs_criu_cli"]), (name, m["ratios"])
    if name in restoring:
        assert num(m["restores_per_s"]) and m["restores_per_s"] > 0, (name, m.get("restores_per_s"))
    else:
        assert "restores_per_s" not in m, name
for name in restoring - {"prewarm"}:
    assert set(doc["modes"][name]["stages"]) == {"restore", "specialize", "invoke"}, name
assert set(doc["modes"]["prewarm"]["stages"]) == {"clone", "specialize", "invoke"}
for name in ("prewarm", "prewarm_restore"):
    d = doc["modes"][name]["density"]
    assert d["instances"] == 4 and num(d["pss_per_instance_mib"]) and d["pss_per_instance_mib"] > 0, (name, d)
assert doc["modes"]["prewarm"]["density"]["parent_pss_mib"] > 0
assert "density" not in doc["modes"]["exec"]
assert num(doc["modes"]["prewarm"]["ratios"]["times_fork_zygote"])
PY
then ok "JSON has the eight modes with numbers"; else fail "JSON has the eight modes with numbers"; fi
if python3 - "$work/bench.svg" <<'PY'
import sys, xml.dom.minidom
dom = xml.dom.minidom.parse(sys.argv[1])
root = dom.documentElement
assert root.tagName == "svg", root.tagName
texts = {"".join(n.data for n in t.childNodes if n.nodeType == n.TEXT_NODE) for t in dom.getElementsByTagName("text")}
for mode in ["exec", "criu_cli", "prewarm", "prewarm_restore", "prewarm_cold", "prewarm_cold_noring", "fork_zygote", "warm"]:
    assert mode in texts, mode
assert len(dom.getElementsByTagName("circle")) == 8 * 3
PY
then ok "SVG parses, one row per mode"; else fail "SVG parses, one row per mode"; fi
nothing_left "after a run" "$bench_pid"

# --modes picks modes; the others are neither run nor reported.
"$prewarm" bench --template python3 --runs 2 --density 2 --modes warm,prewarm --json "$work/some.json" >"$work/out" 2>"$work/err"
check "--modes: only those" python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); sys.exit(sorted(d["modes"]) != ["prewarm", "warm"])' "$work/some.json"

# Ctrl-C in the middle of the runs: exit 130, everything torn down.
"$prewarm" bench --template python3 --runs 50 --concurrency 2 >"$work/out" 2>"$work/err" &
bench_pid=$!
for _ in $(seq 100); do grep -q "run 1 of" "$work/err" 2>/dev/null && break; sleep 0.1; done
kill -INT $bench_pid
wait $bench_pid
status=$?
if [ "$status" -eq 130 ]; then ok "Ctrl-C: exit status 130"; else fail "Ctrl-C: exit status 130 (got $status)"; tr '\r' '\n' <"$work/err" | tail -5; fi
check "Ctrl-C: says so" grep -q "interrupted" "$work/err"
nothing_left "after Ctrl-C" "$bench_pid"

"$prewarm" template rm python3 >/dev/null 2>&1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
