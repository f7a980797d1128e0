#!/usr/bin/env bash
# End-to-end on a real cluster: kind + Istio + envoy-redis-auth as a
# WasmPlugin on the client's sidecar, checked against the seed's session;
# then (SERVER_SIDE=1, the default) on the Redis pod's own sidecar
# (istio/server-side/): two clients with no password, each allowed exactly
# what the user its mesh identity maps to allows; and (CLUSTER_SCENARIO=1, the
# default) in front of a six-pod Redis Cluster (istio/cluster/): the filter
# on the client's sidecar on every connection to a node, MOVED included.
#
#   e2e/kind/run.sh            run, then delete what it created
#   KEEP=1 e2e/kind/run.sh     keep the cluster and the registry afterwards
#
# Needs: docker (running), kind, kubectl, curl, tar, sha256sum or shasum, and
# what ./dev build needs (Rust, binaryen's wasm-opt). Downloads istioctl
# (checksum-verified) into .e2e-run/kind/. Every manifest it applies is a
# file of istio/ or e2e/kind/, validated offline by e2e/test_istio_manifests.py.
#
# Settings (environment):
#   CLUSTER           kind cluster name (default envoy-redis-auth); reused if it exists
#   KIND_NODE_IMAGE   node image (default kindest/node:v1.31.2: Kubernetes 1.31,
#                     supported by Istio 1.24 and the version the manifests are
#                     validated against)
#   ISTIO_VERSION     default 1.24.2 (the version of istio/schemas/)
#   ISTIOCTL_SHA256   expected sha256 of the istioctl archive for this platform;
#                     if unset, the checksum Istio publishes next to the
#                     archive is used (and printed, to pin it)
#   REGISTRY_PORT     host port of the registry, on 127.0.0.1 (default 5001)
#   KEEP=1            do not delete the cluster and the registry on exit
#   SERVER_SIDE=0     skip the server-side scenario (istio/server-side/)
#   CLUSTER_SCENARIO=0  skip the Redis Cluster scenario (istio/cluster/)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CLUSTER="${CLUSTER:-envoy-redis-auth}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.31.2}"
ISTIO_VERSION="${ISTIO_VERSION:-1.24.2}"
ISTIOCTL_SHA256="${ISTIOCTL_SHA256:-}"
REGISTRY_PORT="${REGISTRY_PORT:-5001}"
KEEP="${KEEP:-0}"
SERVER_SIDE="${SERVER_SIDE:-1}"
CLUSTER_SCENARIO="${CLUSTER_SCENARIO:-1}"

# These two must match the url in e2e/kind/wasmplugin.yaml
# (oci://kind-registry:5000/envoy-redis-auth:e2e).
REGISTRY_NAME="kind-registry"
IMAGE="envoy-redis-auth:e2e"
REGISTRY_IMAGE="docker.io/library/registry:2.8.3"

NS="redis"
KCTX="kind-${CLUSTER}"
CACHE="$ROOT/.e2e-run/kind"
WORK="$(mktemp -d)"
# The demo's credentials: istio/redis-secret.yaml (server) and the digests in
# the WasmPlugin (client users).
SERVER_PASSWORD="testredis"
CLIENT_PASSWORD='testredis123!'
WRONGPASS="WRONGPASS invalid username-password pair or user is disabled."

# Applied in this order (namespace first, the WasmPlugin last).
MANIFESTS=(
  istio/namespace.yaml
  istio/redis-secret.yaml
  istio/redis-server.yaml
  istio/redis-client.yaml
  e2e/kind/intruder.yaml
  istio/security.yaml
  istio/destinationrule.yaml
)
WASMPLUGIN=e2e/kind/wasmplugin.yaml

# The server-side scenario: Redis in $SS_NS with the filter on its sidecar,
# the clients cart (namespace shop) and ops-console (namespace ops), with no
# password. Applied in this order, the WasmPlugin last (with the image from
# the local registry patched in, see below).
SS_NS="redis-shared"
SS_REDIS_HOST="redis.${SS_NS}"
SS_MANIFESTS=(
  istio/server-side/namespace.yaml
  istio/server-side/redis-secret.yaml
  istio/server-side/redis-server.yaml
  istio/server-side/redis-clients.yaml
  istio/server-side/security.yaml
  istio/server-side/destinationrule.yaml
)
SS_WASMPLUGIN=istio/server-side/wasmplugin.yaml
NOAUTH="NOAUTH Authentication required."

# The Redis Cluster scenario: six Redis pods in $CL_NS (no filter on them),
# the cluster created from inside redis-cluster-0 with the server password,
# and a client whose sidecar runs the filter on every connection to a node.
# Applied in this order, the WasmPlugin last (image patched in, see below).
CL_NS="redis-cluster"
CL_MANIFESTS=(
  istio/cluster/namespace.yaml
  istio/cluster/redis-secret.yaml
  istio/cluster/redis-cluster.yaml
  istio/cluster/redis-clients.yaml
  istio/cluster/security.yaml
  istio/cluster/destinationrule.yaml
)
CL_WASMPLUGIN=istio/cluster/wasmplugin.yaml
CL_PODS=6
# Redis 7.2's wording (server_version redis-7.2 in the server-side plugin).
NOPERM_KEY="NOPERM No permissions to access a key"
noperm_command() { printf "NOPERM User %s has no permissions to run the '%s' command" "$1" "$2"; }

created_cluster=0
created_registry=0

step() { printf '\n==> %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
die() {
  printf '\nERROR: %s\n' "$*" >&2
  exit 1
}
k() { kubectl --context "$KCTX" "$@"; }

diagnostics() {
  printf '\n==> diagnostics\n' >&2
  k get pods -A -o wide >&2 || true
  k -n "$NS" get wasmplugins,destinationrules,peerauthentications,authorizationpolicies >&2 || true
  printf -- '---- istio-proxy of redis-client (last 60 lines) ----\n' >&2
  k -n "$NS" logs deploy/redis-client -c istio-proxy --tail=60 >&2 || true
  if [ "$SERVER_SIDE" = "1" ]; then
    k -n "$SS_NS" get wasmplugins,destinationrules,peerauthentications,authorizationpolicies >&2 || true
    printf -- '---- istio-proxy of %s/redis (last 60 lines) ----\n' "$SS_NS" >&2
    k -n "$SS_NS" logs deploy/redis -c istio-proxy --tail=60 >&2 || true
  fi
  if [ "$CLUSTER_SCENARIO" = "1" ]; then
    k -n "$CL_NS" get wasmplugins,destinationrules,peerauthentications,authorizationpolicies >&2 || true
    printf -- '---- istio-proxy of %s/redis-cluster-client (last 60 lines) ----\n' "$CL_NS" >&2
    k -n "$CL_NS" logs deploy/redis-cluster-client -c istio-proxy --tail=60 >&2 || true
    printf -- '---- redis of %s/redis-cluster-0 (last 30 lines) ----\n' "$CL_NS" >&2
    k -n "$CL_NS" logs redis-cluster-0 -c redis --tail=30 >&2 || true
  fi
}

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    diagnostics
  fi
  if [ "$KEEP" = "1" ]; then
    printf '\nKEEP=1: keeping cluster %s (kubectl --context %s) and registry %s\n' "$CLUSTER" "$KCTX" "$REGISTRY_NAME"
  else
    if [ "$created_cluster" -eq 1 ]; then
      step "cleanup: deleting kind cluster $CLUSTER"
      kind delete cluster --name "$CLUSTER" || true
    fi
    if [ "$created_registry" -eq 1 ]; then
      step "cleanup: removing registry container $REGISTRY_NAME"
      docker rm -f "$REGISTRY_NAME" >/dev/null || true
    fi
  fi
  rm -rf "$WORK"
  if [ "$rc" -eq 0 ]; then
    printf '\nPASSED: kind end-to-end\n'
  else
    printf '\nFAILED: kind end-to-end (exit status %s)\n' "$rc" >&2
  fi
}
trap cleanup EXIT

# expect DESCRIPTION EXPECTED ACTUAL
expect() {
  if [ "$2" != "$3" ]; then
    printf '    expected: %s\n    got:      %s\n' "$2" "$3" >&2
    die "$1"
  fi
  ok "$1"
}

# wait_for SECONDS DESCRIPTION COMMAND...: until COMMAND succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "timed out waiting for: $what"
    fi
    sleep 3
  done
  ok "$what"
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# redis-cli in a pod of the namespace, against the Redis Service (through
# that pod's sidecar). Prints the replies, one per line (no tty: no
# "(error)" prefixes).
cli_in() { # cli_in DEPLOYMENT ARGS...
  local deploy="$1"
  shift
  k -n "$NS" exec "deploy/$deploy" -c "$deploy" -- redis-cli -h redis-single --no-auth-warning "$@"
}

# The intruder (a pod under another ServiceAccount) pings HOST: the
# AuthorizationPolicy must close its connection before Redis answers at all.
expect_intruder_refused() { # expect_intruder_refused HOST WHAT
  local host="$1" what="$2" out rc=0
  out="$(k -n "$NS" exec deploy/intruder -c intruder -- redis-cli -h "$host" PING 2>&1)" || rc=$?
  case "$out" in
    *PONG* | *NOAUTH*) die "the intruder reached $what: $out" ;;
  esac
  [ "$rc" -ne 0 ] || die "redis-cli from the intruder succeeded: $out"
  ok "intruder's connection closed (redis-cli: ${out//$'\n'/ })"
}

# A shipped WasmPlugin with only the module's location changed (to the image
# in the local registry), patched offline into OUT, then applied.
apply_wasmplugin_from_registry() { # apply_wasmplugin_from_registry FILE OUT
  k patch --local -f "$1" --type merge -o yaml \
    -p "{\"spec\":{\"url\":\"oci://${REGISTRY_NAME}:5000/${IMAGE}\",\"imagePullPolicy\":\"Always\"}}" >"$2"
  k apply -f "$2"
}
client() { cli_in redis-client "$@"; }
# The same, with commands on stdin (one connection for all of them).
client_session() {
  k -n "$NS" exec -i deploy/redis-client -c redis-client -- redis-cli -h redis-single --no-auth-warning
}
# Server side: redis-cli in a client pod against the shared Redis, with no
# password (the filter on Redis's sidecar knows the pod by its identity).
ss_cli() { # ss_cli NAMESPACE DEPLOYMENT ARGS...
  local ns="$1" deploy="$2"
  shift 2
  k -n "$ns" exec "deploy/$deploy" -c "$deploy" -- redis-cli -h "$SS_REDIS_HOST" --no-auth-warning "$@"
}
cart() { ss_cli shop cart "$@"; }
ops() { ss_cli ops ops-console "$@"; }
# The same, with commands on stdin (one connection).
ss_session() { # ss_session NAMESPACE DEPLOYMENT
  k -n "$1" exec -i "deploy/$2" -c "$2" -- redis-cli -h "$SS_REDIS_HOST" --no-auth-warning
}
# Redis Cluster: redis-cli in the client pod against HOST (the Service name
# or a pod IP), through its sidecar, so through the filter on every
# connection. cl_cli follows MOVED/ASK (-c; the "-> Redirected" notes
# redis-cli may print are dropped), cl_cli_noredirect does not.
cl_cli() { # cl_cli HOST ARGS...
  local host="$1"
  shift
  k -n "$CL_NS" exec deploy/redis-cluster-client -c redis-cluster-client -- \
    redis-cli -c -h "$host" --no-auth-warning "$@" | sed '/^-> Redirected/d'
}
cl_cli_noredirect() { # cl_cli_noredirect HOST ARGS...
  local host="$1"
  shift
  k -n "$CL_NS" exec deploy/redis-cluster-client -c redis-cluster-client -- \
    redis-cli -h "$host" --no-auth-warning "$@"
}
# redis-cli in a Redis pod (which has no filter), logged in with the server
# password from that container's own environment: the password is expanded
# in the pod, never on this machine.
cl_redis() { # cl_redis POD ARGS...
  local pod="$1"
  shift
  # shellcheck disable=SC2016 # $REDIS_PASSWORD is the pod's, expanded there
  k -n "$CL_NS" exec "$pod" -c redis -- \
    sh -c 'exec redis-cli -a "$REDIS_PASSWORD" --no-auth-warning "$@"' redis-cli "$@"
}

# ---------------------------------------------------------------- preflight

step "preflight: tools"
for tool in docker kind kubectl curl tar; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done
command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 || die "sha256sum or shasum needed"
docker info >/dev/null 2>&1 || die "docker is not running (or not reachable by this user)"
[ -x tools/oci-image.sh ] || die "tools/oci-image.sh not found or not executable"
ok "docker, kind, kubectl, curl, tar"

step "preflight: offline validation of the manifests (e2e/test_istio_manifests.py)"
if python3 -c 'import pytest, yaml, jsonschema, kubernetes_validate' 2>/dev/null; then
  python3 e2e/test_istio_manifests.py "${MANIFESTS[@]}" "$WASMPLUGIN" "${SS_MANIFESTS[@]}" "$SS_WASMPLUGIN" \
    "${CL_MANIFESTS[@]}" "$CL_WASMPLUGIN" ||
    die "the manifests do not validate"
  ok "manifests valid"
else
  echo "    WARNING: skipped: Python packages missing (./dev setup installs them); CI validates the manifests"
fi

# ---------------------------------------------------------------- build

step "build: the wasm filter (./dev build)"
./dev build

# ---------------------------------------------------------------- registry + cluster

step "registry: $REGISTRY_NAME on 127.0.0.1:$REGISTRY_PORT"
if [ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null || true)" = "true" ]; then
  ok "reusing the running container $REGISTRY_NAME"
else
  docker rm -f "$REGISTRY_NAME" >/dev/null 2>&1 || true
  docker run -d --restart=always --name "$REGISTRY_NAME" \
    -p "127.0.0.1:${REGISTRY_PORT}:5000" "$REGISTRY_IMAGE" >/dev/null
  created_registry=1
  ok "started $REGISTRY_IMAGE"
fi

step "kind: cluster $CLUSTER ($KIND_NODE_IMAGE)"
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  ok "reusing the existing cluster $CLUSTER"
else
  created_cluster=1
  kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" --wait 180s
fi
k cluster-info >/dev/null || die "cannot reach cluster $CLUSTER with context $KCTX"

step "registry: connecting $REGISTRY_NAME to the docker network 'kind'"
# On that network the sidecars reach it as kind-registry:5000 (kind's nodes
# forward pod DNS queries to Docker's DNS, which knows container names).
if [ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REGISTRY_NAME")" = "null" ]; then
  docker network connect kind "$REGISTRY_NAME"
fi
ok "connected"

# ---------------------------------------------------------------- Istio

step "istioctl $ISTIO_VERSION: download and verify"
case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=osx ;;
  *) die "unsupported OS $(uname -s)" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  arm64 | aarch64) arch=arm64 ;;
  *) die "unsupported architecture $(uname -m)" ;;
esac
if [ "$os" = osx ] && [ "$arch" = amd64 ]; then
  archive="istioctl-${ISTIO_VERSION}-osx.tar.gz"
else
  archive="istioctl-${ISTIO_VERSION}-${os}-${arch}.tar.gz"
fi
url="https://github.com/istio/istio/releases/download/${ISTIO_VERSION}/${archive}"
ISTIOCTL="$CACHE/istioctl-${ISTIO_VERSION}-${os}-${arch}"
if [ -x "$ISTIOCTL" ]; then
  ok "cached: $ISTIOCTL"
else
  mkdir -p "$CACHE"
  curl -fsSL --retry 3 -o "$WORK/$archive" "$url" || die "download failed: $url"
  if [ -z "$ISTIOCTL_SHA256" ]; then
    curl -fsSL --retry 3 -o "$WORK/$archive.sha256" "$url.sha256" || die "download failed: $url.sha256"
    ISTIOCTL_SHA256="$(cut -d' ' -f1 <"$WORK/$archive.sha256")"
    echo "    checksum published with the release: $ISTIOCTL_SHA256"
    echo "    (pin it with ISTIOCTL_SHA256=$ISTIOCTL_SHA256)"
  fi
  actual="$(sha256_of "$WORK/$archive")"
  expect "sha256 of $archive" "$ISTIOCTL_SHA256" "$actual"
  tar -xzf "$WORK/$archive" -C "$WORK" istioctl
  install -m 0755 "$WORK/istioctl" "$ISTIOCTL"
fi
"$ISTIOCTL" version --remote=false

step "istio: install (profile minimal; sidecars may pull from $REGISTRY_NAME:5000 over plain http)"
"$ISTIOCTL" --context "$KCTX" install -y \
  --set profile=minimal \
  --set "meshConfig.defaultConfig.proxyMetadata.WASM_INSECURE_REGISTRIES=${REGISTRY_NAME}:5000"
k -n istio-system rollout status deploy/istiod --timeout=180s

# ---------------------------------------------------------------- image

step "image: tools/oci-image.sh --push localhost:$REGISTRY_PORT/$IMAGE"
tools/oci-image.sh --push "localhost:${REGISTRY_PORT}/${IMAGE}"
tags="$(curl -fsS "http://127.0.0.1:${REGISTRY_PORT}/v2/${IMAGE%%:*}/tags/list")" || die "registry does not answer"
case "$tags" in
  *"\"${IMAGE##*:}\""*) ok "registry has $IMAGE" ;;
  *) die "registry has no $IMAGE: $tags" ;;
esac

# ---------------------------------------------------------------- workloads

step "manifests: ${MANIFESTS[*]}"
# A WasmPlugin left by a KEEP=1 run would change the baseline below.
if k get namespace "$NS" >/dev/null 2>&1; then
  k delete -f "$WASMPLUGIN" --ignore-not-found
fi
for manifest in "${MANIFESTS[@]}"; do
  k apply -f "$manifest"
done
for deploy in redis-single redis-client intruder; do
  k -n "$NS" rollout status "deploy/$deploy" --timeout=240s
done
containers="$(k -n "$NS" get pods -l app=redis-client -o jsonpath='{.items[*].spec.containers[*].name}')"
case " $containers " in
  *" istio-proxy "*) ok "redis-client has a sidecar ($containers)" ;;
  *) die "redis-client has no istio-proxy sidecar: $containers" ;;
esac

step "baseline, no filter yet: the client reaches Redis with the SERVER password"
baseline() { [ "$(client AUTH "$SERVER_PASSWORD" 2>/dev/null)" = "OK" ]; }
wait_for 120 "AUTH <server password> -> OK (straight to Redis, through Istio mTLS)" baseline

step "AuthorizationPolicy: another ServiceAccount is refused before Redis"
expect_intruder_refused redis-single Redis

# ---------------------------------------------------------------- the filter

step "WasmPlugin: $WASMPLUGIN"
k apply -f "$WASMPLUGIN"
filtered() { [ "$(client AUTH "$CLIENT_PASSWORD" 2>/dev/null)" = "OK" ]; }
wait_for 240 "the filter is in the client's sidecar (AUTH <client password> -> OK)" filtered

step "seed session through the filter"
expect "AUTH testredis (the server's password) -> WRONGPASS" "$WRONGPASS" "$(client AUTH "$SERVER_PASSWORD")"
expect "AUTH testredis123! -> OK" "OK" "$(client AUTH "$CLIENT_PASSWORD")"
session="$(printf 'AUTH %s\nAUTH %s\nSET foo bar\nGET foo\n' "$SERVER_PASSWORD" "$CLIENT_PASSWORD" | client_session)"
expect "one connection: WRONGPASS, OK, SET OK, GET bar" \
  "$(printf '%s\nOK\nOK\nbar' "$WRONGPASS")" "$(printf '%s\n' "$session" | sed '/^$/d')"
expect "no AUTH -> NOAUTH" "NOAUTH Authentication required." "$(client GET foo)"
expect "ACL user alice (AUTH alice alicepw) -> GET foo" "bar" "$(client --user alice --pass alicepw GET foo)"
expect "SET/GET a second key" "OK" "$(client -a "$CLIENT_PASSWORD" SET seed 000)"
expect "GET it back" "000" "$(client -a "$CLIENT_PASSWORD" GET seed)"

step "secrets: the server password is in the sidecar only"
app_env="$(k -n "$NS" exec deploy/redis-client -c redis-client -- env)"
case "$app_env" in
  *REDIS_PASSWORD* | *"$SERVER_PASSWORD"*) die "the app container's environment holds the server password" ;;
esac
ok "the app container's environment has neither REDIS_PASSWORD nor the password"
app_spec="$(k -n "$NS" get deploy/redis-client -o jsonpath='{.spec.template.spec.containers[?(@.name=="redis-client")]}')"
case "$app_spec" in
  *secretKeyRef* | *redis-server-auth*) die "the app container refers to the server Secret" ;;
esac
ok "the app container does not refer to the Secret"
[ "$(k -n "$NS" exec deploy/redis-client -c istio-proxy -- printenv REDIS_PASSWORD)" = "$SERVER_PASSWORD" ] ||
  die "the sidecar's REDIS_PASSWORD is not the server password"
ok "the sidecar's REDIS_PASSWORD is the server password"
k -n "$NS" exec deploy/redis-client -c istio-proxy -- pilot-agent request GET config_dump >"$WORK/config_dump.json"
grep -q 'filters.network.wasm.v3.Wasm' "$WORK/config_dump.json" || die "no wasm network filter in the sidecar's config_dump"
if grep -q "$SERVER_PASSWORD" "$WORK/config_dump.json"; then
  die "a password (testredis...) appears in the sidecar's config_dump, which the app can read on localhost:15000"
fi
ok "the sidecar's config_dump (readable by the app on localhost:15000) has no password in it"

# ---------------------------------------------------------------- Redis Cluster

if [ "$CLUSTER_SCENARIO" != "1" ]; then
  step "Redis Cluster: skipped (CLUSTER_SCENARIO=$CLUSTER_SCENARIO)"
else
  step "Redis Cluster: manifests ${CL_MANIFESTS[*]}"
  # A WasmPlugin left by a KEEP=1 run would change the baseline below.
  if k get namespace "$CL_NS" >/dev/null 2>&1; then
    k delete -f "$CL_WASMPLUGIN" --ignore-not-found
  fi
  for manifest in "${CL_MANIFESTS[@]}"; do
    k apply -f "$manifest"
  done
  k -n "$CL_NS" rollout status statefulset/redis-cluster --timeout=300s
  k -n "$CL_NS" rollout status deploy/redis-cluster-client --timeout=240s
  for pod in "app=redis-cluster" "app=redis-cluster-client"; do
    containers="$(k -n "$CL_NS" get pods -l "$pod" -o jsonpath='{.items[0].spec.containers[*].name}')"
    case " $containers " in
      *" istio-proxy "*) ok "$pod has a sidecar ($containers)" ;;
      *) die "$pod has no istio-proxy sidecar: $containers" ;;
    esac
  done
  # The pod IPs, in the order of the pods' names (redis-cluster-0 first).
  cl_ips=()
  for i in $(seq 0 $((CL_PODS - 1))); do
    ip="$(k -n "$CL_NS" get pod "redis-cluster-$i" -o jsonpath='{.status.podIP}')"
    [ -n "$ip" ] || die "redis-cluster-$i has no pod IP"
    cl_ips+=("$ip")
  done
  cl_nodes=()
  for ip in "${cl_ips[@]}"; do
    cl_nodes+=("$ip:6379")
  done
  ok "pod IPs: ${cl_ips[*]}"

  step "Redis Cluster: create it from inside redis-cluster-0 (no filter there, the server password)"
  # (Captured, not piped into grep -q: with pipefail, kubectl's SIGPIPE
  # would count as a failure.)
  cluster_ok() {
    local i info
    for i in $(seq 0 $((CL_PODS - 1))); do
      info="$(cl_redis "redis-cluster-$i" CLUSTER INFO 2>/dev/null)" || return 1
      case "$info" in
        *cluster_state:ok*) ;;
        *) return 1 ;;
      esac
    done
  }
  info="$(cl_redis redis-cluster-0 CLUSTER INFO)"
  case "$info" in
    *"cluster_known_nodes:${CL_PODS}"*) ok "the cluster exists already (a KEEP=1 run): not created again" ;;
    *) cl_redis redis-cluster-0 --cluster create "${cl_nodes[@]}" --cluster-replicas 1 --cluster-yes ;;
  esac
  wait_for 180 "cluster_state:ok on all $CL_PODS nodes" cluster_ok
  check_out="$(cl_redis redis-cluster-0 --cluster check "${cl_nodes[0]}")"
  case "$check_out" in
    *"[OK] All 16384 slots covered."*) ok "redis-cli --cluster check: all 16384 slots covered" ;;
    *) die "redis-cli --cluster check: $check_out" ;;
  esac

  step "Redis Cluster, no filter yet: the client reaches the nodes with the SERVER password"
  cl_baseline() { [ "$(cl_cli redis-cluster -a "$SERVER_PASSWORD" SET '{a}baseline' 1 2>/dev/null)" = "OK" ]; }
  wait_for 120 "redis-cli -c -a <server password> SET {a}baseline 1 -> OK (straight to the nodes)" cl_baseline

  step "Redis Cluster: another ServiceAccount is refused before the nodes"
  expect_intruder_refused "redis-cluster.${CL_NS}" "a Redis Cluster node"

  step "Redis Cluster: WasmPlugin $CL_WASMPLUGIN (image from $REGISTRY_NAME:5000)"
  apply_wasmplugin_from_registry "$CL_WASMPLUGIN" "$WORK/cluster-wasmplugin.yaml"
  cl_filtered() { [ "$(cl_cli redis-cluster AUTH "$CLIENT_PASSWORD" 2>/dev/null)" = "OK" ]; }
  wait_for 240 "the filter is in the client's sidecar (AUTH <client password> -> OK)" cl_filtered

  step "Redis Cluster: through the filter, on every node"
  expect "AUTH testredis (the server's password) -> WRONGPASS" "$WRONGPASS" \
    "$(cl_cli redis-cluster AUTH "$SERVER_PASSWORD")"
  expect "no AUTH -> NOAUTH" "$NOAUTH" "$(cl_cli redis-cluster GET '{a}1')"
  # From redis-cluster-0's pod IP: {a}, {b} and {c} are in slots 15495, 3300
  # and 7365, one per master, so at least two of them are elsewhere.
  moved=0
  for tag in a b c; do
    reply="$(cl_cli_noredirect "${cl_ips[0]}" -a "$CLIENT_PASSWORD" GET "{$tag}1")"
    case "$reply" in
      "MOVED "*)
        target="${reply##* }"
        case " ${cl_nodes[*]} " in
          *" $target "*) moved=$((moved + 1)) ;;
          *) die "MOVED names $target, not a pod IP:6379 (${cl_nodes[*]})" ;;
        esac
        ;;
    esac
  done
  [ "$moved" -ge 2 ] || die "expected MOVED for at least two of {a}, {b}, {c} from ${cl_ips[0]}, got $moved"
  ok "without -c: MOVED to pod IPs:6379 ($moved of 3 keys)"
  for tag in a b c; do
    expect "-c from ${cl_ips[0]}: SET {$tag}1 (slot of {$tag}) -> OK" "OK" \
      "$(cl_cli "${cl_ips[0]}" -a "$CLIENT_PASSWORD" SET "{$tag}1" "v$tag")"
    expect "-c: GET {$tag}1 -> v$tag" "v$tag" "$(cl_cli redis-cluster -a "$CLIENT_PASSWORD" GET "{$tag}1")"
  done
  slots="$(cl_cli redis-cluster -a "$CLIENT_PASSWORD" CLUSTER SLOTS)"
  for ip in "${cl_ips[@]}"; do
    case "$slots" in
      *"$ip"*) ;;
      *) die "CLUSTER SLOTS does not list $ip: $slots" ;;
    esac
  done
  ok "CLUSTER SLOTS lists the $CL_PODS pod IPs"

  step "Redis Cluster: the restricted user alice (~app:*, topology commands, no @dangerous)"
  expect "alice: SET app:{a}1 x -> OK" "OK" "$(cl_cli "${cl_ips[0]}" --user alice --pass alicepw SET 'app:{a}1' x)"
  expect "alice: SET app:{b}1 y -> OK" "OK" "$(cl_cli "${cl_ips[0]}" --user alice --pass alicepw SET 'app:{b}1' y)"
  expect "alice: GET app:{a}1 -> x" "x" "$(cl_cli redis-cluster --user alice --pass alicepw GET 'app:{a}1')"
  expect "alice: SET other:{a}1 x -> NOPERM (key)" "$NOPERM_KEY" \
    "$(cl_cli redis-cluster --user alice --pass alicepw SET 'other:{a}1' x)"
  expect "alice: GET {b}1 -> NOPERM (key)" "$NOPERM_KEY" \
    "$(cl_cli redis-cluster --user alice --pass alicepw GET '{b}1')"
  expect "alice: CLUSTER RESET -> NOPERM (command)" "$(noperm_command alice 'cluster|reset')" \
    "$(cl_cli redis-cluster --user alice --pass alicepw CLUSTER RESET)"
  alice_slots="$(cl_cli redis-cluster --user alice --pass alicepw CLUSTER SLOTS)"
  case "$alice_slots" in
    *"${cl_ips[0]}"*) ok "alice: CLUSTER SLOTS -> the slot map" ;;
    *) die "alice: CLUSTER SLOTS: $alice_slots" ;;
  esac

  step "Redis Cluster: the filter is on the client only, the password in its sidecar only"
  cl_app_env="$(k -n "$CL_NS" exec deploy/redis-cluster-client -c redis-cluster-client -- env)"
  case "$cl_app_env" in
    *REDIS_PASSWORD* | *"$SERVER_PASSWORD"*) die "the client app's environment holds the server password" ;;
  esac
  ok "the client app's environment has neither REDIS_PASSWORD nor the password"
  k -n "$CL_NS" exec deploy/redis-cluster-client -c istio-proxy -- pilot-agent request GET config_dump \
    >"$WORK/cl_client_config_dump.json"
  grep -q 'filters.network.wasm.v3.Wasm' "$WORK/cl_client_config_dump.json" ||
    die "no wasm network filter in the client's sidecar"
  if grep -q "$SERVER_PASSWORD" "$WORK/cl_client_config_dump.json"; then
    die "the server password appears in the client sidecar's config_dump"
  fi
  ok "the client's sidecar has the filter, and no password in its config_dump"
  k -n "$CL_NS" exec redis-cluster-0 -c istio-proxy -- pilot-agent request GET config_dump \
    >"$WORK/cl_redis_config_dump.json"
  if grep -q 'filters.network.wasm.v3.Wasm' "$WORK/cl_redis_config_dump.json"; then
    die "the filter is on a Redis pod's sidecar (redis-cluster-0): the WasmPlugin must select the clients only"
  fi
  ok "no wasm filter on the Redis pods' sidecar (redis-cluster-0)"
  check_out="$(cl_redis redis-cluster-0 --cluster check "${cl_nodes[0]}")"
  case "$check_out" in
    *"[OK] All 16384 slots covered."*) ok "--cluster check in redis-cluster-0 still passes" ;;
    *) die "redis-cli --cluster check: $check_out" ;;
  esac
fi

# ---------------------------------------------------------------- server side

if [ "$SERVER_SIDE" != "1" ]; then
  step "server side: skipped (SERVER_SIDE=$SERVER_SIDE)"
  exit 0
fi

step "server side: manifests ${SS_MANIFESTS[*]}"
# A WasmPlugin left by a KEEP=1 run would change the baseline below.
if k get namespace "$SS_NS" >/dev/null 2>&1; then
  k delete -f "$SS_WASMPLUGIN" --ignore-not-found
fi
for manifest in "${SS_MANIFESTS[@]}"; do
  k apply -f "$manifest"
done
k -n "$SS_NS" rollout status deploy/redis --timeout=240s
k -n shop rollout status deploy/cart --timeout=240s
k -n ops rollout status deploy/ops-console --timeout=240s
for pod in "$SS_NS app=redis" "shop app=cart" "ops app=ops-console"; do
  containers="$(k -n "${pod%% *}" get pods -l "${pod#* }" -o jsonpath='{.items[*].spec.containers[*].name}')"
  case " $containers " in
    *" istio-proxy "*) ok "${pod#* } has a sidecar ($containers)" ;;
    *) die "${pod#* } has no istio-proxy sidecar: $containers" ;;
  esac
done

step "server side, no filter yet: the clients reach Redis (through Istio mTLS), which wants its password"
ss_baseline() { [ "$(cart PING 2>/dev/null)" = "$NOAUTH" ] && [ "$(ops PING 2>/dev/null)" = "$NOAUTH" ]; }
wait_for 120 "cart and ops-console: PING -> NOAUTH (straight from Redis)" ss_baseline

step "server side: another ServiceAccount is refused before Redis"
expect_intruder_refused "$SS_REDIS_HOST" "the shared Redis"

step "server side: WasmPlugin $SS_WASMPLUGIN (image from $REGISTRY_NAME:5000)"
# (As e2e/kind/wasmplugin.yaml does for the client side.)
apply_wasmplugin_from_registry "$SS_WASMPLUGIN" "$WORK/server-side-wasmplugin.yaml"
ss_filtered() { [ "$(cart SET cart:1 x 2>/dev/null)" = "OK" ]; }
wait_for 240 "the filter is in Redis's sidecar (cart, no AUTH: SET cart:1 x -> OK)" ss_filtered

step "server side: cart (spiffe://cluster.local/ns/shop/sa/cart -> user cart: ~cart:* +get +set +del)"
expect "cart: ACL WHOAMI -> cart" "cart" "$(cart ACL WHOAMI)"
expect "cart: SET cart:1 x -> OK" "OK" "$(cart SET cart:1 x)"
expect "cart: GET cart:1 -> x" "x" "$(cart GET cart:1)"
expect "cart: SET ops:1 x -> NOPERM (key)" "$NOPERM_KEY" "$(cart SET ops:1 x)"
expect "cart: FLUSHALL -> NOPERM (command)" "$(noperm_command cart flushall)" "$(cart FLUSHALL)"
session="$(printf 'AUTH ops anything\nACL WHOAMI\nAUTH %s\nACL WHOAMI\n' "$SERVER_PASSWORD" | ss_session shop cart)"
expect "cart: AUTH ops <any> and AUTH <server password> -> WRONGPASS, still cart" \
  "$(printf '%s\ncart\n%s\ncart' "$WRONGPASS" "$WRONGPASS")" "$(printf '%s\n' "$session" | sed '/^$/d')"

step "server side: ops-console (spiffe://cluster.local/ns/ops/* -> user ops: ~* &* +@all -@dangerous)"
expect "ops: ACL WHOAMI -> ops" "ops" "$(ops ACL WHOAMI)"
expect "ops: SET ops:1 x -> OK" "OK" "$(ops SET ops:1 x)"
expect "ops: GET cart:1 -> x (every key)" "x" "$(ops GET cart:1)"
expect "ops: FLUSHALL -> NOPERM (@dangerous)" "$(noperm_command ops flushall)" "$(ops FLUSHALL)"
expect "cart: GET ops:1 -> NOPERM (key), though ops wrote it" "$NOPERM_KEY" "$(cart GET ops:1)"

step "server side: the intruder is still refused"
expect_intruder_refused "$SS_REDIS_HOST" "the shared Redis"

step "server side: no password in any client"
for ns in shop ops; do
  [ -z "$(k -n "$ns" get secrets -o name)" ] || die "namespace $ns holds a Secret: $(k -n "$ns" get secrets -o name)"
done
ok "no Secret in the namespaces shop and ops"
for pod in "shop cart" "ops ops-console"; do
  ns="${pod%% *}" deploy="${pod#* }"
  for c in "$deploy" istio-proxy; do
    env_out="$(k -n "$ns" exec "deploy/$deploy" -c "$c" -- env)"
    case "$env_out" in
      *REDIS_PASSWORD* | *"$SERVER_PASSWORD"*) die "$deploy's container $c holds the server password" ;;
    esac
  done
done
ok "neither the clients' apps nor their sidecars hold REDIS_PASSWORD or the password"
[ "$(k -n "$SS_NS" exec deploy/redis -c istio-proxy -- printenv REDIS_PASSWORD)" = "$SERVER_PASSWORD" ] ||
  die "the Redis sidecar's REDIS_PASSWORD is not the server password"
ok "the Redis sidecar's REDIS_PASSWORD is the server password"
k -n "$SS_NS" exec deploy/redis -c istio-proxy -- pilot-agent request GET config_dump >"$WORK/ss_config_dump.json"
grep -q 'filters.network.wasm.v3.Wasm' "$WORK/ss_config_dump.json" || die "no wasm network filter in Redis's sidecar"
if grep -q "$SERVER_PASSWORD" "$WORK/ss_config_dump.json"; then
  die "the server password appears in the Redis sidecar's config_dump"
fi
ok "the Redis sidecar's config_dump has no password in it"
