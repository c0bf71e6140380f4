#!/usr/bin/env bash
# Templates across nodes against a real registry (Debian's docker-registry, the CNCF distribution
# registry): push from one state dir, pull into another (a second "node") and run a function
# there; then everything that goes wrong on the way: the registry killed mid-pull, a corrupted
# blob in its storage, a tag moved between pull and use, an artifact made for another CRIU or
# kernel, something that is not a template, a wrong password. After each failure nothing is
# installed and nothing is left half-pulled.
# Then prewarmd on a third node: templates named by --template-from and PUT /v1/templates/NAME
# pulled on first need, /readyz, a local build when the registry's template does not fit the node,
# the bounded cache's evictions, and the metrics of it all.
# Usage: fleet_test.sh PREWARM PREWARMD SOURCE_DIR
set -uo pipefail
prewarm=$1 prewarmd=$2 source=$3
work=$(mktemp -d /tmp/prewarm-fleet.XXXXXX)
node_a=$work/node-a node_b=$work/node-b node_c=$work/node-c
passed=0 failed=0 pids=()

ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

cleanup() {
        for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        rm -rf "$work"
}
trap cleanup EXIT

if ! command -v docker-registry >/dev/null || ! command -v htpasswd >/dev/null; then
        echo "docker-registry or htpasswd missing: run scripts/setup"; exit 1
fi

free_port() {
        local p
        for p in $(shuf -i 20000-30000 -n 50); do
                (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
        done
        echo 0
}

# start_registry NAME PORT [AUTH]: a registry on 127.0.0.1:PORT storing in $work/NAME; with AUTH,
# htpasswd auth for user "fleet" with password "secret". Sets registry_pid.
start_registry() {
        local name=$1 port=$2 auth=${3:-}
        mkdir -p "$work/$name"
        {
                printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$work/$name/data"
                printf '  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' "$port"
                if [ -n "$auth" ]; then
                        htpasswd -Bbn fleet secret >"$work/$name/htpasswd"
                        printf 'auth:\n  htpasswd:\n    realm: fleet-test\n    path: %s\n' "$work/$name/htpasswd"
                fi
        } >"$work/$name/config.yml"
        docker-registry serve "$work/$name/config.yml" >>"$work/$name/log" 2>&1 &
        registry_pid=$!
        pids+=("$registry_pid")
        for _ in $(seq 1 100); do
                curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
                sleep 0.05
        done
        echo "registry $name did not come up"; cat "$work/$name/log"; return 1
}

# run_pw NODE ARGS...: prewarm on that node's state dir; output in $work/out, status in $status.
run_pw() {
        local node=$1
        shift
        "$prewarm" --state-dir "$node" "$@" >"$work/out" 2>&1
        status=$?
}

expect_ok() {
        if [ "$status" -eq 0 ]; then ok "$1"; else fail "$1 (status $status)"; sed 's/^/     /' "$work/out"; fi
}

# expect_refused NAME TEXT: failed, saying TEXT, and node B holds no trace of a pull.
expect_refused() {
        if [ "$status" -ne 0 ] && grep -qF -- "$2" "$work/out"; then ok "$1"; else
                fail "$1 (status $status, wanted a failure saying '$2')"; sed 's/^/     /' "$work/out"; fi
        if ls -A "$node_b/templates" 2>/dev/null | grep -q '^\.pull-'; then fail "$1: a .pull- directory is left"; fi
}

installed() { [ -f "$node_b/templates/$1/manifest.json" ]; }

pinned_digest() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["digest"])' "$node_b/templates/$1/source.json"; }

hello=$work/hello.py
printf 'def main(args):\n    return {"greeting": "Hello, " + args.get("name", "?") + "!"}\n' >"$hello"

run_function() {  # run_function TEMPLATE NAME
        run_pw "$node_b" run --template "$1" --code "file://$hello" --payload "{\"name\": \"$2\"}"
        grep -q "\"Hello, $2!\"" "$work/out"
}

open_port=$(free_port) auth_port=$(free_port) cut_port=$(free_port)
start_registry open "$open_port" || exit 1
open_pid=$registry_pid
start_registry auth "$auth_port" auth || exit 1
open=127.0.0.1:$open_port auth=127.0.0.1:$auth_port

# ---------------------------------------------------------------- push, pull, run
run_pw "$node_a" template build python3;                                     expect_ok "node A builds python3"
run_pw "$node_a" template push --plain-http python3 "$open/prewarm/python3:v1"; expect_ok "push to the registry"
first=$(grep -o 'sha256:[0-9a-f]\{64\}' "$work/out" | head -n 1)
run_pw "$node_a" template push --plain-http python3 "$open/prewarm/python3:v1"; expect_ok "push again"
grep -qF "$first" "$work/out" && ok "the same template pushes to the same digest" || fail "second push changed the digest"
ls -A "$node_a/templates" | grep -q '^\.push-' && fail "node A keeps a .push- directory" || ok "node A keeps nothing of the push"

run_pw "$node_b" template pull --plain-http --as py "$open/prewarm/python3:v1"; expect_ok "node B pulls it as py"
grep -qF "$first" "$work/out" && ok "the pull names the digest it installed" || fail "pull printed another digest"
run_function py pulled && ok "a function runs on node B from the pulled template" || { fail "function on node B"; cat "$work/out"; }
run_pw "$node_b" template list
grep -q '^py ' "$work/out" && ok "node B lists py" || fail "node B does not list py"
run_pw "$node_b" template pull --plain-http --as pinned "$open/prewarm/python3@$first"; expect_ok "pull pinned by digest"

# ---------------------------------------------------------------- a tag moved between pull and use
sleep 1  # a rebuild within the same second could give the same manifest
run_pw "$node_a" template build python3;                                     expect_ok "node A rebuilds python3"
run_pw "$node_a" template push --plain-http python3 "$open/prewarm/python3:v1"; expect_ok "the tag moves to the rebuild"
second=$(grep -o 'sha256:[0-9a-f]\{64\}' "$work/out" | head -n 1)
[ "$second" != "$first" ] && ok "the rebuild has another digest" || fail "the rebuild has the same digest"
[ "$(pinned_digest py)" = "$first" ] && ok "node B's py still is what it pulled" || fail "node B's py changed under it"
run_function py "after the move" && ok "node B's py still runs" || fail "py after the tag moved"
run_pw "$node_b" template pull --plain-http --as py "$open/prewarm/python3:v1"; expect_ok "pulling the tag again"
[ "$(pinned_digest py)" = "$second" ] && ok "py is now the tag's new target" || fail "py was not replaced"
run_function py "replaced" && ok "the replaced py runs" || fail "replaced py"

# ---------------------------------------------------------------- not for this node
manifest_json() { curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$open/v2/prewarm/python3/manifests/$1"; }
put_manifest() {  # put_manifest TAG < JSON
        curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
                --data-binary @- "http://$open/v2/prewarm/python3/manifests/$1"
}
altered() {  # altered KEY VALUE: the v1 manifest with one annotation changed
        manifest_json v1 | python3 -c 'import json, sys; m = json.load(sys.stdin); m["annotations"][sys.argv[1]] = sys.argv[2]; print(json.dumps(m))' "$1" "$2"
}
[ "$(altered org.criu.checkpoint.criu.version 99.0.0 | put_manifest future-criu)" = 201 ] || fail "putting the future-criu manifest"
run_pw "$node_b" template pull --plain-http --as future "$open/prewarm/python3:future-criu"
expect_refused "a template of a newer CRIU is refused" "CRIU 99.0.0"
installed future && fail "the refused template was installed"
[ "$(altered org.criu.checkpoint.host.kernel 2.6.32-old | put_manifest old-kernel)" = 201 ] || fail "putting the old-kernel manifest"
run_pw "$node_b" template pull --plain-http --as old "$open/prewarm/python3:old-kernel"
expect_refused "a template of another kernel is refused" "kernel 2.6.32-old"
# A node whose /usr differs (here: the template says its libc is one byte longer) is told at pull,
# naming the file, instead of failing every restore.
built=$node_a/templates/python3/manifest.json
cp "$built" "$work/manifest.good"
grep -q '"host_files"' "$built" && ok "the template records the host files it maps" || fail "no host_files in the manifest"
python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
libc = next(f for f in m["host_files"] if "/libc.so" in f["path"])
libc["size"] += 1
json.dump(m, open(sys.argv[1], "w"), indent=2, sort_keys=True)' "$built"
run_pw "$node_a" template push --plain-http python3 "$open/prewarm/python3:other-usr"; expect_ok "push of the altered manifest"
cp "$work/manifest.good" "$built"
run_pw "$node_b" template pull --plain-http --as otherusr "$open/prewarm/python3:other-usr"
expect_refused "a template built against another /usr is refused at pull" "the nodes' /usr differ"
grep -q "libc.so" "$work/out" && ok "the refusal names the file" || fail "the refusal does not name libc"
installed otherusr && fail "the template of another /usr was installed"
[ "$(manifest_json v1 | python3 -c 'import json, sys; m = json.load(sys.stdin); m["artifactType"] = "application/vnd.example.other"; print(json.dumps(m))' | put_manifest other)" = 201 ] ||
        fail "putting the other manifest"
run_pw "$node_b" template pull --plain-http --as other "$open/prewarm/python3:other"
expect_refused "an artifact that is not a template is refused" "not a prewarm template"
run_pw "$node_b" template pull --plain-http "$open/prewarm/python3:no-such-tag"
expect_refused "a tag that does not exist" "MANIFEST_UNKNOWN"

# ---------------------------------------------------------------- a corrupted blob
layer=$(manifest_json v1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["digest"][7:])')
data=$work/open/data/docker/registry/v2/blobs/sha256/${layer:0:2}/$layer/data
if [ -f "$data" ]; then
        cp "$data" "$work/layer.good"
        printf 'corrupt' | dd of="$data" bs=1 seek=10000 conv=notrunc status=none
        run_pw "$node_b" template pull --plain-http --as broken "$open/prewarm/python3:v1"
        expect_refused "a corrupted layer is refused" "what came has digest"
        installed broken && fail "the corrupted template was installed"
        cp "$work/layer.good" "$data"
else
        fail "no layer blob at $data"
fi

# ---------------------------------------------------------------- the registry killed mid-pull
python3 "$source/tests/fleet/cut_proxy.py" "$cut_port" "$open_port" "$open_pid" &
pids+=("$!")
for _ in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$cut_port/v2/" && break; sleep 0.05; done
run_pw "$node_b" template pull --plain-http --as cut "127.0.0.1:$cut_port/prewarm/python3:v1"
expect_refused "a pull whose registry dies refuses" "pull of"
installed cut && fail "the half-pulled template was installed"
kill -0 "$open_pid" 2>/dev/null && fail "the registry survived the cut"
run_function py "after the cut" && ok "node B's templates are untouched by the failed pull" || fail "py after the cut"

# ---------------------------------------------------------------- credentials
PREWARM_REGISTRY_PASSWORD=secret run_pw "$node_a" template push --plain-http --username fleet python3 "$auth/prewarm/python3:v1"
expect_ok "push with credentials"
run_pw "$node_b" template pull --plain-http --as anon "$auth/prewarm/python3:v1"
expect_refused "an anonymous pull from a registry with auth" "needs credentials"
PREWARM_REGISTRY_PASSWORD=wrong run_pw "$node_b" template pull --plain-http --username fleet --as wrong "$auth/prewarm/python3:v1"
expect_refused "a wrong password" "refused the credentials"
installed wrong && fail "a template was installed with a wrong password"
PREWARM_REGISTRY_PASSWORD=secret run_pw "$node_b" template pull --plain-http --username fleet --as authed "$auth/prewarm/python3:v1"
expect_ok "pull with credentials"
run_function authed "with credentials" && ok "the template pulled with credentials runs" || fail "authed run"

# ---------------------------------------------------------------- a bearer token
# The registry sends clients to a token service (its Bearer challenge names the realm); the
# service grants tokens for the basic credentials it is given.
token_port=$(free_port) bearer_port=$(free_port)
/usr/bin/python3 "$source/tests/fleet/token_server.py" "$token_port" "$work/token-cert.pem" fleet secret &
pids+=("$!")
for _ in $(seq 1 100); do [ -s "$work/token-cert.pem" ] && break; sleep 0.05; done
mkdir -p "$work/bearer"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$work/bearer/data" "$bearer_port" >"$work/bearer/config.yml"
printf 'auth:\n  token:\n    realm: http://127.0.0.1:%s/token\n    service: prewarm-test\n    issuer: prewarm-test-issuer\n    rootcertbundle: %s\n' \
        "$token_port" "$work/token-cert.pem" >>"$work/bearer/config.yml"
docker-registry serve "$work/bearer/config.yml" >>"$work/bearer/log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$bearer_port/v2/" && break; sleep 0.05; done
bearer=127.0.0.1:$bearer_port
PREWARM_REGISTRY_PASSWORD=secret run_pw "$node_a" template push --plain-http --username fleet python3 "$bearer/prewarm/python3:v1"
expect_ok "push through the bearer-token flow"
PREWARM_REGISTRY_PASSWORD=secret run_pw "$node_b" template pull --plain-http --username fleet --as tokened "$bearer/prewarm/python3:v1"
expect_ok "pull through the bearer-token flow"
run_function tokened "with a token" && ok "the template pulled with a token runs" || fail "tokened run"
PREWARM_REGISTRY_PASSWORD=wrong run_pw "$node_b" template pull --plain-http --username fleet --as badtoken "$bearer/prewarm/python3:v1"
expect_refused "the token service refuses a wrong password" "refused the credentials"
run_pw "$node_b" template pull --plain-http --as notoken "$bearer/prewarm/python3:v1"
expect_refused "no token for anonymous access" "refused anonymous access"

# ---------------------------------------------------------------- TLS with a CA of our own
tls_port=$(free_port)
mkdir -p "$work/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" >/dev/null 2>&1 || fail "making a certificate"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n  tls:\n    certificate: %s\n    key: %s\n' \
        "$work/tls/data" "$tls_port" "$work/tls/cert.pem" "$work/tls/key.pem" >"$work/tls/config.yml"
docker-registry serve "$work/tls/config.yml" >>"$work/tls/log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do curl -s -o /dev/null --cacert "$work/tls/cert.pem" "https://127.0.0.1:$tls_port/v2/" && break; sleep 0.05; done
tls=127.0.0.1:$tls_port
run_pw "$node_a" template push python3 "$tls/prewarm/python3:v1"
expect_refused "HTTPS to a registry whose certificate nothing vouches for is refused" "certificate"
run_pw "$node_a" template push --ca-file "$work/tls/cert.pem" python3 "$tls/prewarm/python3:v1"
expect_ok "push over HTTPS with the registry's CA"
run_pw "$node_b" template pull --ca-file "$work/tls/cert.pem" --as tls "$tls/prewarm/python3:v1"
expect_ok "pull over HTTPS with the registry's CA"
run_function tls "over TLS" && ok "the template pulled over TLS runs" || fail "tls run"

# ---------------------------------------------------------------- prewarmd on node C
start_registry open "$open_port" || exit 1   # again: the cut killed it; same storage
sock=$node_c/prewarmd.sock
api() {  # api METHOD PATH [CURL ARGS...]: body in $work/body, status in $code
        local method=$1 path=$2
        shift 2
        code=$(curl -s --unix-socket "$sock" -X "$method" -o "$work/body" -w '%{http_code}' "http://prewarmd$path" "$@")
}
expect() {  # expect NAME STATUS BODY_REGEX
        if [ "$code" = "$2" ] && grep -Eq -- "$3" "$work/body"; then ok "$1"; else
                fail "$1 (status $code, wanted $2)"; head -c 1500 "$work/body"; echo; fi
}
metric() { api GET /metrics; grep -E "^$1 " "$work/body" | awk '{print $2}'; }
mkdir -p "$node_c/templates/.pull-crashed-Ab12Cd/images"   # what a pull killed mid-way leaves
"$prewarmd" --state-dir "$node_c" --zygotes 1-2 --registry-plain-http --template-cache-mb 1 \
        --template-from "fleet-py=$open/prewarm/python3:v1" \
        --template-from "python3=$open/prewarm/python3:future-criu" 2>"$work/daemon.log" &
daemon=$!
pids+=("$daemon")
for _ in $(seq 1 200); do curl -s --unix-socket "$sock" -o /dev/null http://prewarmd/healthz && break; sleep 0.05; done
for _ in $(seq 1 600); do
        api GET /readyz
        [ "$code" = 200 ] && break
        sleep 0.1
done
expect "prewarmd turns ready once its templates are here" 200 '"ready"'
[ -d "$node_c/templates/.pull-crashed-Ab12Cd" ] && fail "the crashed pull's directory was not reaped" ||
        ok "prewarmd reaps what a crashed pull left"
api GET /v1/templates/fleet-py;   expect "fleet-py was pulled at start and names its source" 200 "\"status\":\"built\".*\"from\":\"$open/prewarm/python3:v1\""
grep -q "building it here instead" "$work/daemon.log" && ok "python3's registry copy is for a newer CRIU: built here instead" ||
        fail "no local build for the incompatible python3"
api GET /v1/templates/python3;    expect "the local build of python3 serves" 200 '"status":"built"'

source_json=$(python3 -c 'import json, sys; print(json.dumps(open(sys.argv[1]).read()))' "$hello")
api PUT /v1/functions/greet -d "{\"template\": \"fleet-py\", \"source\": $source_json}"
expect "a function on the pulled template registers" 201 '"greet"'
api POST /v1/functions/greet/invoke -d '{"name": "node C"}'
expect "and runs" 200 '"Hello, node C!"'

api PUT /v1/templates/later -d "{\"from\": \"$open/prewarm/python3@$second\"}"
expect "a template source set through the API" 200 '"status":"not pulled"'
[ -f "$node_c/templates/later/manifest.json" ] && fail "later was pulled before it was needed" || ok "later is not pulled before it is needed"
api PUT /v1/functions/later-fn -d "{\"template\": \"later\", \"source\": $source_json}"
expect "a function on a template not pulled yet registers" 201 '"later-fn"'
api POST /v1/functions/later-fn/invoke -d '{"name": "first need"}'
expect "the first invocation pulls its template" 200 '"Hello, first need!"'
api PUT /v1/templates/nowhere -d '{"from": "not a reference"}'
expect "a bad reference is refused" 400 'REPOSITORY'

api POST /v1/templates/pull -d "{\"ref\": \"$open/prewarm/python3:v1\", \"as\": \"spare\"}"
expect "a pull through the API" 200 '"digest":"sha256:'
# Over --template-cache-mb 1 with three pulled templates: spare, which nothing needs, is evicted;
# fleet-py and later, which functions need, are kept.
[ -d "$node_c/templates/spare" ] && fail "spare was not evicted" || ok "the cache evicts the pulled template nothing needs"
[ -f "$node_c/templates/fleet-py/manifest.json" ] && [ -f "$node_c/templates/later/manifest.json" ] &&
        ok "templates that functions need stay" || fail "a needed template was evicted"
api GET /metrics
for m in 'prewarm_template_events_total{event="pulled"}' 'prewarm_template_events_total{event="hit"}' \
         'prewarm_template_events_total{event="incompatible"}' 'prewarm_template_events_total{event="built_locally"}' \
         'prewarm_template_events_total{event="evicted"}' 'prewarm_stage_seconds_count{stage="template_pull"}'; do
        v=$(grep -F "$m " "$work/body" | awk '{print $2}')
        [ -n "$v" ] && [ "${v%.*}" -ge 1 ] && ok "metric $m = $v" || fail "metric $m missing or 0"
done
kill -TERM "$daemon"; wait "$daemon"
ls -A "$node_c/templates" | grep -q '^\.pull-' && fail "node C keeps a .pull- directory" || ok "node C keeps nothing half-pulled"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
