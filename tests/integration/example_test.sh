#!/usr/bin/env bash
# The C API example compiles against the installed header and library (found with pkg-config)
# and runs a function through a restored template. Usage: example_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
work=$(mktemp -d /tmp/prewarm-example.XXXXXX)
trap 'rm -rf "$work"' EXIT

DESTDIR="$work/root" meson install -C "$build" --quiet --no-rebuild >/dev/null
pc=$(dirname "$(find "$work/root" -name prewarm.pc | head -n1)")
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$work/root
# shellcheck disable=SC2046 # pkg-config output is a list of flags
cc -Wall -Werror ${SANITIZE_CFLAGS:-} "$source/examples/embed.c" $(pkg-config --cflags --libs prewarm) -o "$work/embed"

libdir=$(dirname "$(find "$work/root" -name 'libprewarm.so' | head -n1)")
out=$(PREWARM_STATE_DIR="$work/state" LD_LIBRARY_PATH=$libdir \
      "$work/embed" "file://$source/examples/hello.py" '{"name": "embedder"}')
echo "$out"
[ "$out" = '{"greeting":"Hello, embedder!"}' ]
echo "1 passed, 0 failed"
