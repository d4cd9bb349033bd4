# Shared by scripts/test.sh and scripts/local-up.sh: installs what ticklake needs on a fresh
# machine and caches it outside the clone (TICKLAKE_CACHE), so repeat runs are fast.
# shellcheck shell=bash

TICKLAKE_CACHE=${TICKLAKE_CACHE:-$HOME/.cache/ticklake}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$TICKLAKE_CACHE/target}
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}
# Kubernetes control plane for the operator's tests (built from .ci/k8s and .ci/etcd; the tags
# there must match these) and Mailpit, the SMTP server of the notification tests.
K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
MAILPIT_VERSION=${MAILPIT_VERSION:-v1.33.1}
# Helm for the chart's tests, and the prometheus-operator release whose CRDs (ServiceMonitor,
# PodMonitor) the chart's optional monitors are validated against.
HELM_VERSION=${HELM_VERSION:-v3.22.0}
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.90.1}
CARGO_FUZZ_VERSION=${CARGO_FUZZ_VERSION:-0.13.1}
mkdir -p "$TICKLAKE_CACHE/bin"

# The release profile builds incrementally (fast rebuilds while developing); its cache only
# grows. Past 20 GiB it is dropped, so repeated runs on one machine do not fill the disk (a
# full disk makes MinIO refuse writes and the tests fail for no fault of the code).
incremental="$CARGO_TARGET_DIR/release/incremental"
if [ -d "$incremental" ] && [ "$(du -sm "$incremental" | cut -f1)" -gt 20480 ]; then
  printf '\n==> %s\n' "dropping $incremental (over 20 GiB)" >&2
  rm -rf "$incremental"
fi

log() { printf '\n==> %s\n' "$*" >&2; }

need_apt=()
# librdkafka is built from its bundled source: cmake and a C toolchain; libcurl's headers.
command -v cmake >/dev/null || need_apt+=(cmake)
command -v cc >/dev/null || need_apt+=(build-essential)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || need_apt+=(libcurl4-openssl-dev)
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)

install_system_packages() {
  local extra=("$@")
  local want=("${need_apt[@]}" "${extra[@]}")
  if [ ${#want[@]} -gt 0 ]; then
    log "installing Debian packages: ${want[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust (rustup) first" >&2
    exit 1
  fi
}
