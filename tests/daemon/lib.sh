# Helpers of the prewarmd integration tests (sourced). The caller sets prewarmd (the binary) and
# source (the source tree) first. Every test runs its own daemon on a temporary state dir and
# checks after each stop that the daemon left nothing behind.
set -uo pipefail
work=$(mktemp -d /tmp/prewarmd-test.XXXXXX)
state=$work/state
code_dir=$work/code   # the daemons' --code-root: file:// code comes from here
mkdir -p "$code_dir"
sock=$state/prewarmd.sock
log=$work/daemon.log
passed=0 failed=0 daemon_pid= code=

ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

cleanup() {
        if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
                kill -TERM "$daemon_pid"; wait "$daemon_pid"
        fi
        [ -n "${extra_cleanup:-}" ] && eval "$extra_cleanup"
        if [ "$failed" -gt 0 ]; then echo "--- daemon log (last 40 lines)"; tail -n 40 "$log"; fi
        # A test that failed half-way (say a daemon killed mid-restore and no successor to reap it)
        # must not leave mounts behind either: rm would stop at them.
        awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
                while read -r m; do umount -l "$m"; done
        rm -rf "$work"
}
trap cleanup EXIT

finish() {
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
}

# free_port [N]: the first of N consecutive TCP ports on 127.0.0.1 that nothing listens on.
free_port() {
        local n=${1:-1} p i busy
        # Below the kernel's ephemeral range (32768+), where outgoing connections take their ports.
        for p in $(shuf -i 10000-32000 -n 100); do
                busy=0
                for ((i = 0; i < n; i++)); do
                        if (exec 3<>"/dev/tcp/127.0.0.1/$((p + i))") 2>/dev/null; then busy=1; break; fi
                done
                [ "$busy" -eq 0 ] && { echo "$p"; return; }
        done
        echo 0
}

# start_daemon [OPTIONS...]: starts prewarmd on $state with $code_dir as its code root and waits
# until it answers.
start_daemon() {
        # --zygotes 1-4: the tests' daemons need few ready clones (the default keeps 32 per template)
        "$prewarmd" --state-dir "$state" --code-root "$code_dir" --zygotes 1-4 "$@" 2>>"$log" &
        daemon_pid=$!
        for _ in $(seq 1 200); do
                curl -s --unix-socket "$sock" -o /dev/null http://prewarmd/healthz 2>/dev/null && return 0
                kill -0 "$daemon_pid" 2>/dev/null || break
                sleep 0.05
        done
        fail "prewarmd did not come up"; tail -n 20 "$log"; return 1
}

# stop_daemon: SIGTERM, wait, and check what it left (see check_clean). Sets $stop_status.
stop_daemon() {
        local pid=$daemon_pid
        kill -TERM "$pid"
        wait "$pid"
        stop_status=$?
        daemon_pid=
        check_clean "$pid"
}

# Processes in a cgroup named after the daemon's pid, cgroups of that name, mounts under the state
# dir, restore directories, the socket: none may be left once the daemon has exited.
check_clean() {
        local pid=$1 leaks=0 dir
        if kill -0 "$pid" 2>/dev/null; then fail "daemon $pid still running"; leaks=1; fi
        if grep -lE "/prewarm/[^/]*-$pid(-[0-9]+)?(/|$)" /proc/[0-9]*/cgroup 2>/dev/null | grep -q .; then
                fail "processes left in cgroups of daemon $pid"; leaks=1
        fi
        for dir in /sys/fs/cgroup/prewarm /sys/fs/cgroup/memory/prewarm /sys/fs/cgroup/pids/prewarm; do
                [ -d "$dir" ] || continue
                if ls "$dir" | grep -qE -- "-$pid(-[0-9]+)?\$"; then fail "cgroup of daemon $pid left in $dir"; leaks=1; fi
        done
        # With a successor running on the same state dir ($daemon_pid), only what is named after
        # this daemon: the successor may be restoring meanwhile. Without one, anything.
        local mine="[^/ ]*-$pid-[0-9]+" mounts="run/[^/ ]*-$pid-[0-9]+[/ ]"
        [ -z "${daemon_pid:-}" ] && mine=".*" mounts=""
        if grep -qE " $state/$mounts" /proc/self/mountinfo; then
                fail "mounts of daemon $pid left under $state"; leaks=1
        fi
        if ls -A "$state/run" 2>/dev/null | grep -qxE -- "$mine"; then
                fail "restore directories of daemon $pid left in $state/run"; leaks=1
        fi
        if [ -e "$sock" ]; then fail "socket $sock left"; leaks=1; fi
        [ "$leaks" -eq 0 ] && ok "nothing left behind by daemon $pid"
}

# api METHOD PATH [CURL ARGS...]: the answer's body in $work/body, headers in $work/headers, the
# status in $code.
api() {
        local method=$1 path=$2
        shift 2
        code=$(curl -s --unix-socket "$sock" -X "$method" -o "$work/body" -D "$work/headers" \
                -w '%{http_code}' "http://prewarmd$path" "$@")
}

# tcp_token: the bearer token a daemon made for its TCP API at first start.
tcp_token() { cat "$state/api.token"; }

# url METHOD URL [CURL ARGS...]: the same over TCP.
url() {
        local method=$1 u=$2
        shift 2
        code=$(curl -s -X "$method" -o "$work/body" -D "$work/headers" -w '%{http_code}' "$u" "$@")
}

# expect NAME STATUS BODY_REGEX: checks the last answer.
expect() {
        local name=$1 want=$2 re=$3
        if [ "$code" != "$want" ] || { [ -n "$re" ] && ! grep -Eq -- "$re" "$work/body"; }; then
                fail "$name (status $code, wanted $want)"; sed 's/^/     body: /' "$work/body" | head -c 2000; echo
                return 1
        fi
        ok "$name"
}

header() { grep -i "^$1:" "$work/headers" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }

# A JSON string of a file's text.
json_string() { python3 -c 'import json, sys; print(json.dumps(open(sys.argv[1]).read()))' "$1"; }

# corrupt_template NAME: overwrites a few bytes of NAME's largest image, so that its restores fail
# their digest check and the pool falls back to a cold start.
corrupt_template() {
        local images=$state/templates/$1/images victim
        victim=$(ls -S "$images" | head -n 1)
        printf 'corrupt' | dd of="$images/$victim" bs=1 seek=4096 conv=notrunc status=none
}

# build_template: the python3 template in this state dir, through the API.
build_template() {
        api POST /v1/templates/python3/build
        expect "template python3 built through the API" 200 '"status":"built"'
}
