#!/usr/bin/env bash
# Builds the fuzz target with clang's libFuzzer (plus ASan and UBSan) and runs it for SECONDS from a
# copy of the seed corpus with a fixed seed; reports executions and crashes, exits non-zero on a
# crash (the crashing input is kept in the build dir's fuzz/ for a reproducer).
# Usage: run.sh SOURCE_DIR BUILD_DIR SECONDS
set -uo pipefail
source=$1 build=$2 seconds=$3
out=$build/fuzz
mkdir -p "$out"
work=$(mktemp -d /tmp/prewarm-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v clang >/dev/null || { echo "fuzz: clang is not installed (scripts/setup installs it)"; echo "0 passed, 1 failed"; exit 1; }
if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE \
        -I"$source/include" -I"$source/src/lib" -I"$source/src/lib/0-base" -I"$source/src/daemon" \
        "$source/tests/fuzz/fuzz_request.c" "$source/src/daemon/function_def.c" "$source/src/lib/0-base/util.c" "$source/src/lib/0-base/error.c" \
        -ljansson -o "$out/fuzz_request" 2>"$work/build.log"; then
        cat "$work/build.log"
        echo "0 passed, 1 failed"
        exit 1
fi
cp "$source"/tests/fuzz/corpus/* "$work/"
"$out/fuzz_request" -seed=1 -max_total_time="$seconds" -artifact_prefix="$out/" "$work" >"$work/fuzz.log" 2>&1
status=$?
runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$work/fuzz.log" | tail -n 1)
if [ "$status" -eq 0 ]; then
        echo "fuzz: fuzz_request: ${runs:-no summary}, 0 crashes (corpus grew to $(ls "$work" | wc -l) inputs)"
        echo "1 passed, 0 failed"
        exit 0
fi
tail -n 40 "$work/fuzz.log"
echo "fuzz: fuzz_request found a crash (exit $status); input kept in $out/"
echo "0 passed, 1 failed"
exit 1
