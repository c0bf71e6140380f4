# What the daemon benchmarks (load.sh, burst.sh) share; source it with the script's name:
#   . "$here/lib.sh" load
# It makes the scratch dir $work with the daemon's state dir $state and socket $sock, removes
# them and stops the daemon whose pid is in $pid on exit, and defines die and api.
bench_name=$1
work=$(mktemp -d "/tmp/prewarmd-$bench_name.XXXXXX")
state=$work/state sock=$work/state/prewarmd.sock
pid=
cleanup() {
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid"
        rm -rf "$work"
}
trap cleanup EXIT
# die MESSAGE: says why, with the end of the daemon's log, and exits 1.
die() { echo "$bench_name: $*"; [ -f "$work/daemon.log" ] && tail -n 20 "$work/daemon.log"; exit 1; }
# api CURL ARGS...: the body in $work/body; prints the HTTP status.
api() { curl -s --unix-socket "$sock" -o "$work/body" -w '%{http_code}' "$@"; }
