#!/usr/bin/env bash
# deploy/kubernetes: rendered with kubectl kustomize and validated offline against the Kubernetes
# API schemas; then its DaemonSet's pod run on this machine by podman kube play, where prewarmd
# pulls its template from a real registry (Debian's docker-registry), turns ready on /readyz and
# runs a function. Everything it made (pod, image, registry, cgroups, state) is removed after.
# Usage: k8s_test.sh PREWARM PREWARMD SOURCE_DIR
set -uo pipefail
prewarm=$1 prewarmd=$2 source=$3
build_dir=$(cd "$(dirname "$prewarmd")" && pwd)
work=$(mktemp -d /tmp/prewarm-k8s.XXXXXX)
image=localhost/prewarm-k8s-test:$$
pod_name=prewarmd-test-$$
passed=0 failed=0 pids=() played=
# Debian 12's podman here: crun refuses cgroup v1's hybrid mode and its default ulimits exceed
# this machine's hard limits; runc and lower ulimits run the pod.
export CONTAINERS_CONF=$work/containers.conf
printf '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' >"$CONTAINERS_CONF"

ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

cgroups_of_prewarm() { find /sys/fs/cgroup -maxdepth 4 -mindepth 2 -type d -path "*/prewarm/*" 2>/dev/null | sort; }
cgroups_before=$(cgroups_of_prewarm)

cleanup() {
        if [ -n "$played" ]; then
                podman kube down "$work/pod.yaml" >/dev/null 2>&1
                podman pod rm -f "$pod_name" >/dev/null 2>&1
        fi
        podman rmi -f "$image" >/dev/null 2>&1
        for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        rm -rf "$work"
}
trap cleanup EXIT

# ---------------------------------------------------------------- render and validate
kubectl kustomize "$source/deploy/kubernetes" >"$work/rendered.yaml" 2>"$work/kustomize.err" &&
        ok "kubectl kustomize renders the base" || { fail "kubectl kustomize"; cat "$work/kustomize.err"; exit 1; }
if node "$source/tests/k8s/validate.mjs" "$work/rendered.yaml" >"$work/validate.out" 2>&1; then
        ok "every document is valid against the API schemas"
else
        fail "schema validation"; cat "$work/validate.out"
fi
sed 's/privileged: true/privileged: "yes"/' "$work/rendered.yaml" >"$work/broken.yaml"
node "$source/tests/k8s/validate.mjs" "$work/broken.yaml" >"$work/validate.out" 2>&1 &&
        fail "the validation passes a manifest with a wrong type" || ok "the validation catches a wrong type"
for want in 'kind: DaemonSet' 'path: /readyz' 'path: /var/lib/prewarm' 'privileged: true' 'path: /run/prewarm'; do
        grep -qF -- "$want" "$work/rendered.yaml" && ok "the DaemonSet has $want" || fail "the DaemonSet lacks $want"
done

# ---------------------------------------------------------------- a template in a registry
free_port() {
        local p
        for p in $(shuf -i 20000-30000 -n 50); do
                (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
        done
}
port=$(free_port)
mkdir -p "$work/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$work/registry" "$port" >"$work/registry.yml"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.05; done
ref=127.0.0.1:$port/prewarm/python3:k8s
"$prewarm" --state-dir "$work/build-node" template build python3 >"$work/out" 2>&1 &&
        "$prewarm" --state-dir "$work/build-node" template push --plain-http python3 "$ref" >>"$work/out" 2>&1 &&
        ok "the build node pushes python3" || { fail "build and push"; cat "$work/out"; exit 1; }

# ---------------------------------------------------------------- the pod, by podman kube play
# An image with nothing but the merged-/usr links: /usr, the private CRIU root and the build
# tree come from the host as hostPath volumes (a real image would carry them).
mkdir -p "$work/rootfs/etc" "$work/rootfs/usr" "$work/rootfs/opt" "$work/rootfs/tmp" "$work/rootfs/var/lib" "$work/rootfs/run"
for l in bin sbin lib lib64; do ln -s "usr/$l" "$work/rootfs/$l"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" . &&
        podman import "$work/rootfs.tar" "$image" >/dev/null 2>"$work/import.err" &&
        ok "a local image made without a registry" || { fail "podman import"; cat "$work/import.err"; exit 1; }
mkdir -p "$work/state" "$work/run" "$work/token"
token=k8s-test-token-$$-0123456789
printf '%s' "$token" >"$work/token/token"
cat >"$work/settings.json" <<EOF
{"name": "$pod_name", "image": "$image",
 "env": {"PREWARM_TEMPLATES": "python3=$ref", "PREWARM_ARGS": "--registry-plain-http --zygotes 1-2",
         "PATH": "$build_dir:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"},
 "hostPaths": {"state": "$work/state", "socket": "$work/run", "token": "$work/token"},
 "extraMounts": [{"name": "usr", "path": "/usr"}, {"name": "criu", "path": "/opt/prewarm"},
                 {"name": "source", "path": "$source"}, {"name": "build", "path": "$build_dir"}]}
EOF
node "$source/tests/k8s/to_pod.mjs" "$work/rendered.yaml" "$work/settings.json" >"$work/pod.yaml" || { fail "to_pod"; exit 1; }
if podman kube play "$work/pod.yaml" >"$work/play.out" 2>&1; then
        played=1
        ok "podman kube play starts the DaemonSet's pod"
else
        fail "podman kube play"; cat "$work/play.out"; exit 1
fi
ready=0
for _ in $(seq 1 300); do
        code=$(curl -s -o "$work/body" -w '%{http_code}' http://127.0.0.1:8099/readyz)
        [ "$code" = 200 ] && { ready=1; break; }
        sleep 0.2
done
[ "$ready" = 1 ] && ok "its readiness probe turns ready once the template is pulled" ||
        { fail "the pod never turned ready ($code)"; podman logs "$pod_name-prewarmd" 2>&1 | tail -20; }
api() {  # api METHOD PATH [CURL ARGS...] over the pod's TCP API, with the token
        local method=$1 path=$2
        shift 2
        code=$(curl -s -o "$work/body" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token" \
                "http://127.0.0.1:8099$path" "$@")
}
api GET /v1/templates/python3
[ "$code" = 200 ] && grep -q "\"from\":\"$ref\"" "$work/body" && ok "the pod's python3 came from the registry" ||
        { fail "python3 in the pod ($code)"; cat "$work/body"; }
api PUT /v1/functions/k8s-hello -d '{"template": "python3", "source": "def main(args):\n    return {\"from\": \"the pod\", \"name\": args.get(\"name\")}\n"}'
api POST /v1/functions/k8s-hello/invoke -d '{"name": "k8s"}'
[ "$code" = 200 ] && grep -q '"from":"the pod"' "$work/body" && ok "a function runs in the pod's sandbox" ||
        { fail "invoke in the pod ($code)"; cat "$work/body"; }
[ -S "$work/run/prewarmd.sock" ] && ok "the API socket is on the shared hostPath" || fail "no socket on the hostPath"
podman pod stop "$pod_name" >/dev/null 2>&1
podman logs "$pod_name-prewarmd" >"$work/pod.log" 2>&1
grep -q "stopped" "$work/pod.log" && ok "prewarmd in the pod stops cleanly on SIGTERM" ||
        { fail "prewarmd did not stop cleanly"; tail -n 15 "$work/pod.log"; }
podman kube down "$work/pod.yaml" >/dev/null 2>&1 && ok "podman kube down removes it" || fail "podman kube down"
played=
sleep 1
[ "$(cgroups_of_prewarm)" = "$cgroups_before" ] && ok "the pod's prewarmd left no cgroups" ||
        fail "cgroups left: $(comm -13 <(echo "$cgroups_before") <(cgroups_of_prewarm) | head -5)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
