#!/usr/bin/env bash
# The installed libprewarm.a exposes only the public API (pw_*): a program that defines its own
# read_file, err_set and blob_fetch links it statically, with the flags of
# `pkg-config --static --libs prewarm`, and runs. Usage: static_lib_test.sh BUILD_DIR
set -uo pipefail
build=$1
work=$(mktemp -d /tmp/prewarm-static.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

if ! DESTDIR="$work/root" meson install -C "$build" --quiet --no-rebuild >/dev/null; then
        fail "meson install"
        finish
fi
lib=$(find "$work/root" -name libprewarm.a | head -n1)
pcfile=$(find "$work/root" -name prewarm.pc | head -n1)
if [ -z "$lib" ] || [ -z "$pcfile" ]; then
        fail "libprewarm.a and prewarm.pc installed (lib='$lib' pc='$pcfile')"
        finish
fi
ok "libprewarm.a and prewarm.pc installed"

# Every defined global (or weak) symbol must be public API.
nm -g --defined-only -P "$lib" | awk 'NF >= 2 && $2 ~ /^[A-Za-z]$/ {print $1}' | sort -u >"$work/globals"
grep -v '^pw_' "$work/globals" >"$work/offenders"
if [ -s "$work/offenders" ]; then
        fail "libprewarm.a defines $(wc -l <"$work/offenders") global symbols outside pw_*:"
        sed 's/^/  /' "$work/offenders"
else
        ok "libprewarm.a defines no global symbol outside pw_* ($(wc -l <"$work/globals") pw_ symbols)"
fi
for sym in pw_engine_new pw_engine_free; do
        grep -qx "$sym" "$work/globals" || fail "libprewarm.a does not define $sym"
done

# Point the installed prewarm.pc at the temp root (PKG_CONFIG_SYSROOT_DIR would also rewrite the
# system dependencies' paths), and leave only the static library so that -lprewarm finds it.
prefix=$(sed -n 's/^prefix=//p' "$pcfile")
sed -i "s|^prefix=.*|prefix=$work/root$prefix|" "$pcfile"
find "$work/root" -name 'libprewarm.so*' -delete
PKG_CONFIG_PATH=$(dirname "$pcfile")
export PKG_CONFIG_PATH
if ! flags=$(pkg-config --static --cflags --libs prewarm); then
        fail "pkg-config --static --cflags --libs prewarm"
        finish
fi
ok "pkg-config --static: $flags"

cat >"$work/app.c" <<'EOF'
#include <prewarm.h>
#include <stdio.h>
#include <string.h>

/* The application's own functions, with the names of libprewarm's internal ones. */
int read_file(const char *path);
int err_set(int code);
const char *blob_fetch(void);
int read_file(const char *path) { return (int)strlen(path); }
int err_set(int code) { return code + 1; }
const char *blob_fetch(void) { return "app blob"; }

int main(int argc, char **argv)
{
        if (read_file("abc") != 3 || err_set(41) != 42 || strcmp(blob_fetch(), "app blob") != 0) {
                fprintf(stderr, "the application's own functions were not called\n");
                return 1;
        }
        const pw_options opts = {.state_dir = argc > 1 ? argv[1] : NULL};
        pw_engine *e = NULL;
        int r = pw_engine_new(&opts, &e);
        if (r < 0) {
                fprintf(stderr, "pw_engine_new: %d\n", r);
                return 1;
        }
        pw_engine_free(e);
        printf("engine opened and freed\n");
        return 0;
}
EOF
# shellcheck disable=SC2086 # pkg-config output is a list of flags
if cc -Wall -Werror ${SANITIZE_CFLAGS:-} "$work/app.c" $flags -o "$work/app" 2>"$work/cc.log"; then
        ok "a program with its own read_file, err_set and blob_fetch links libprewarm.a"
        if readelf -d "$work/app" | grep -q 'NEEDED.*libprewarm'; then
                fail "the program needs libprewarm.so instead of linking libprewarm.a"
        fi
        if out=$("$work/app" "$work/state" 2>&1); then
                ok "the statically linked program runs: $out"
        else
                fail "the statically linked program runs: $out"
        fi
else
        fail "a program with its own read_file, err_set and blob_fetch links libprewarm.a:"
        head -n 20 "$work/cc.log" | sed 's/^/  /'
fi
finish
