#!/usr/bin/env bash
# The prewarm CLI as a user drives it: template build/list/rm, run with every flag, doctor, and a
# non-zero exit with a one-line reason on each error. Usage: cli_test.sh PREWARM SOURCE_DIR
set -uo pipefail
prewarm=$1 source=$2
work=$(mktemp -d /tmp/prewarm-cli.XXXXXX)
export PREWARM_STATE_DIR=$work/state
passed=0 failed=0
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
# expect NAME EXPECTED_STATUS STDOUT_PATTERN STDERR_PATTERN -- COMMAND...
expect() {
        local name=$1 want_status=$2 out_re=$3 err_re=$4
        shift 5
        "$@" >"$work/out" 2>"$work/err"
        local status=$?
        if [ "$want_status" = nonzero ] && [ "$status" -ne 0 ]; then status=nonzero; fi
        if [ "$status" != "$want_status" ] || { [ -n "$out_re" ] && ! grep -Eq -- "$out_re" "$work/out"; } ||
           { [ -n "$err_re" ] && ! grep -Eq -- "$err_re" "$work/err"; }; then
                fail "$name (status $status)"; sed 's/^/     out: /' "$work/out"; sed 's/^/     err: /' "$work/err"
                return
        fi
        ok "$name"
}
one_line_stderr() {
        if [ "$(grep -c . "$work/err")" -eq 1 ]; then ok "$1: one-line reason"; else fail "$1: one-line reason"; cat "$work/err"; fi
}

cat >"$work/echo.py" <<'PY'
import os
def main(args):
    return {"args": args, "color": os.environ.get("COLOR")}
def other(args):
    return {"entry": "other"}
PY
printf 'def main(args):\n    while True:\n        pass\n' >"$work/loop.py"
printf 'def main(args)\n    return {}\n' >"$work/syntax.py"
digest=sha256:$(sha256sum "$work/echo.py" | cut -d' ' -f1)

expect "help" 0 "template" "" -- "$prewarm" --help
expect "unknown command" 2 "" "unknown command" -- "$prewarm" frobnicate
expect "doctor" 0 "all checks passed" "" -- "$prewarm" doctor
expect "build python3" 0 "" "template python3 ready" -- "$prewarm" template build python3
expect "list" 0 "^python3 +Python 3" "" -- "$prewarm" template list
expect "run hello" 0 '^\{"greeting":"Hello, cli!"\}$' "" -- \
        "$prewarm" run --template python3 --code "file://$source/examples/hello.py" --payload '{"name": "cli"}'
expect "run with env, digest, timings" 0 '"color":"blue"' "^timings: restore [0-9.]+ ms, specialize [0-9.]+ ms, invoke [0-9.]+ ms" -- \
        "$prewarm" run --template python3 --code "$work/echo.py" --env COLOR=blue --digest "$digest" --timings
cp "$work/echo.py" "$work/handler"
expect "code file without an extension" 0 '"color":null' "" -- "$prewarm" run --template python3 --code "$work/handler"
expect "run --main" 0 '"entry":"other"' "" -- "$prewarm" run --template python3 --code "$work/echo.py" --main other
expect "digest mismatch" 1 "" "digest" -- \
        "$prewarm" run --template python3 --code "$work/echo.py" --digest "sha256:$(printf '0%.0s' {1..64})"
one_line_stderr "digest mismatch"
expect "missing code" 1 "" "cannot read .*nope.py" -- "$prewarm" run --template python3 --code "$work/nope.py"
one_line_stderr "missing code"
expect "syntax error" 1 "" "SyntaxError" -- "$prewarm" run --template python3 --code "$work/syntax.py"
expect "payload neither an object nor an array" 1 "" "JSON object or array" -- "$prewarm" run --template python3 --code "$work/echo.py" --payload '"a string"'
one_line_stderr "payload neither an object nor an array"
expect "timeout" 1 "" "timed out after 300 ms" -- "$prewarm" run --template python3 --code "$work/loop.py" --timeout-ms 300
one_line_stderr "timeout"
expect "bad --env" 1 "" "KEY=VALUE" -- "$prewarm" run --template python3 --code "$work/echo.py" --env NOEQUALS
expect "missing --code" 1 "" "required" -- "$prewarm" run --template python3
expect "stray argument" 1 "" "unexpected argument 'stray'" -- \
        "$prewarm" run --template python3 stray --code "$work/echo.py"
# A caller with closed stdin: the engine's descriptors must not land on fd 0.
expect "closed stdin" 0 '"color":"red"' "" -- \
        bash -c 'exec 0<&-; exec "$@"' _ "$prewarm" run --template python3 --code "$work/echo.py" --env COLOR=red
printf '#!/nonexistent/interpreter\n' >"$work/broken-criu"
chmod +x "$work/broken-criu"
expect "CRIU that cannot run" 1 "" "could not execute CRIU" -- \
        env PREWARM_CRIU="$work/broken-criu" "$prewarm" run --template python3 --code "$work/echo.py"
one_line_stderr "CRIU that cannot run"
manifest=$PREWARM_STATE_DIR/templates/python3/manifest.json
cp "$manifest" "$work/manifest.json"
sed -i 's/"kernel": "[^"]*"/"kernel": "0.0.0-elsewhere"/' "$manifest"
expect "template from another kernel" 1 "" "built on kernel 0.0.0-elsewhere.*rebuild" -- \
        "$prewarm" run --template python3 --code "$work/echo.py"
cp "$work/manifest.json" "$manifest"
expect "rm" 0 "" "" -- "$prewarm" template rm python3
expect "run after rm" 1 "" "not built" -- "$prewarm" run --template python3 --code "$work/echo.py"
one_line_stderr "run after rm"
expect "rm unknown" 1 "" "not built" -- "$prewarm" template rm python3

# Nothing of any instance may outlive it.
if grep -q "$work" /proc/self/mountinfo; then fail "no mounts left"; else ok "no mounts left"; fi
# Instance cgroups are NAME-PID-N after the process that restored them: those of a CLI process
# that has exited are leftovers (a live PID is another program's sandbox on this machine).
left=0
for dir in $(find /sys/fs/cgroup -maxdepth 3 -type d -name 'python3-*' -path '*prewarm*' 2>/dev/null); do
    owner=$(basename "$dir" | sed -E 's/^.*-([0-9]+)-[0-9]+$/\1/')
    [ -d "/proc/$owner" ] || left=$((left + 1))
done
if [ "$left" -eq 0 ]; then ok "no cgroups left"; else fail "no cgroups left ($left)"; fi
if [ -z "$(ls -A "$PREWARM_STATE_DIR/run" 2>/dev/null)" ]; then ok "run dir empty"; else fail "run dir empty"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
