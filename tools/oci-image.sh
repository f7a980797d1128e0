#!/usr/bin/env bash
# Build the filter's OCI image (the form Istio's WasmPlugin `url: oci://...`
# fetches) from the built wasm, reproducibly and without a container daemon,
# and optionally push it. See oci/README.md.
#
#   tools/oci-image.sh [--wasm PATH] [--out DIR]        build into target/oci/
#   tools/oci-image.sh --push HOST[:PORT]/REPO:TAG      build, then push the compat image
#   tools/oci-image.sh --install-deps                   install skopeo and docker-registry (apt)
#
# Everything but --install-deps is tools/oci_image.py (run it with --help).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian's docker-registry package starts a registry on :5000 as a system
# service. The tests start their own on a free loopback port, so stop and
# disable the package's one (only that: identified by its unit or pid file).
stop_package_registry() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet docker-registry 2>/dev/null; then
      echo "stopping and disabling the docker-registry system service"
      as_root systemctl stop docker-registry || true
    fi
    as_root systemctl disable docker-registry >/dev/null 2>&1 || true
  fi
  local pidfile=/run/docker-registry.pid pid
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qa docker-registry "/proc/$pid/cmdline" 2>/dev/null; then
      echo "stopping the package's docker-registry (pid $pid)"
      if [ -x /etc/init.d/docker-registry ]; then
        as_root timeout 20 /etc/init.d/docker-registry stop >/dev/null 2>&1 || as_root kill "$pid" || true
      else
        as_root kill "$pid" || true
      fi
    fi
  fi
}

install_deps() {
  local missing=()
  command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "already installed: $(skopeo --version), $(/usr/bin/docker-registry --version 2>&1 | head -n 1)"
  else
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    command -v skopeo >/dev/null 2>&1 || { echo "skopeo still missing after apt-get install" >&2; exit 1; }
    [ -x /usr/bin/docker-registry ] || { echo "docker-registry still missing after apt-get install" >&2; exit 1; }
    echo "installed: $(skopeo --version), $(/usr/bin/docker-registry --version 2>&1 | head -n 1)"
  fi
  stop_package_registry
}

if [ "${1:-}" = "--install-deps" ]; then
  [ $# -eq 1 ] || { echo "--install-deps takes no other arguments" >&2; exit 2; }
  install_deps
  exit 0
fi

exec "$PYTHON" "$ROOT/tools/oci_image.py" "$@"
