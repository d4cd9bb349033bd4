# Sourced by scripts/test.sh (after lib.sh): a real Kubernetes control plane on loopback for the
# operator's tests, envtest-style (etcd, kube-apiserver, kube-controller-manager; no kubelet, no
# containers, so Pods stay Pending). Binaries are built once from the pinned Go modules in
# .ci/k8s and .ci/etcd and cached in $TICKLAKE_CACHE/bin, versioned by name.
# shellcheck shell=bash
set -euo pipefail

K8S_BIN_DIR="$TICKLAKE_CACHE/bin"
KUBE_APISERVER="$K8S_BIN_DIR/kube-apiserver-$K8S_VERSION"
KUBE_CONTROLLER_MANAGER="$K8S_BIN_DIR/kube-controller-manager-$K8S_VERSION"
KUBECTL="$K8S_BIN_DIR/kubectl-$K8S_VERSION"
ETCD="$K8S_BIN_DIR/etcd-$ETCD_VERSION"
# The kube-apiserver's service range; its first address is in the serving certificate.
K8S_SERVICE_CIDR=10.96.0.0/16
K8S_SERVICE_IP=10.96.0.1

# --- building ------------------------------------------------------------------------------------

# go_build_recipe DIR OUTPUT LDFLAGS PKG...: `go build -o OUTPUT` inside a pinned wrapper module.
# go.sum is complete, so this only downloads modules (Go module proxy), never edits the recipe.
go_build_recipe() {
  local dir=$1 out=$2 ldflags=$3
  shift 3
  (cd "$dir" && go build -buildvcs=false -mod=readonly -ldflags "$ldflags" -o "$out" "$@")
}

k8s_build() {
  local want=() b
  for b in kube-apiserver kube-controller-manager kubectl; do
    [ -x "$K8S_BIN_DIR/$b-$K8S_VERSION" ] || want+=("$b")
  done
  if [ ${#want[@]} -gt 0 ]; then
    if ! grep -qx "require k8s.io/kubernetes $K8S_VERSION" .ci/k8s/go.mod; then
      echo "K8S_VERSION=$K8S_VERSION but .ci/k8s/go.mod pins another k8s.io/kubernetes: update the recipe" >&2
      exit 1
    fi
    log "building ${want[*]} $K8S_VERSION from .ci/k8s (once; cached in $K8S_BIN_DIR)"
    local v=${K8S_VERSION#v} major minor ld="-s -w" p pkgs=() out="$TICKLAKE_CACHE/gobuild-k8s" start=$SECONDS
    major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
    # What `make` would stamp, so /version and `kubectl version` tell the real version.
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    done
    for b in "${want[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    rm -rf "$out"; mkdir -p "$out"
    go_build_recipe .ci/k8s "$out/" "$ld" "${pkgs[@]}"
    for b in "${want[@]}"; do mv "$out/$b" "$K8S_BIN_DIR/$b-$K8S_VERSION"; done
    rm -rf "$out"
    log "built ${want[*]} in $((SECONDS - start))s"
  fi
  if [ ! -x "$ETCD" ]; then
    if ! grep -qx "require go.etcd.io/etcd/server/v3 $ETCD_VERSION" .ci/etcd/go.mod; then
      echo "ETCD_VERSION=$ETCD_VERSION but .ci/etcd/go.mod pins another etcd: update the recipe" >&2
      exit 1
    fi
    log "building etcd $ETCD_VERSION from .ci/etcd (once; cached in $K8S_BIN_DIR)"
    local out="$TICKLAKE_CACHE/gobuild-etcd" start=$SECONDS
    rm -rf "$out"; mkdir -p "$out"
    go_build_recipe .ci/etcd "$out/etcd" "-s -w" go.etcd.io/etcd/server/v3
    mv "$out/etcd" "$ETCD"
    rm -rf "$out"
    log "built etcd in $((SECONDS - start))s"
  fi
}

# --- certificates ----------------------------------------------------------------------------------

# k8s_certs DIR: a CA; the API server's serving certificate; an admin client certificate in
# system:masters; the service-account token signing key pair. All made fresh for each run.
k8s_certs() {
  local d=$1
  mkdir -p "$d"
  local rc=0
  # (A subshell tested with `||` would run with set -e ignored: take its status this way.)
  set +e
  (
    set -e
    exec >"$d/openssl.log" 2>&1
    cat >"$d/ca.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
CN = ticklake-test-ca
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -config "$d/ca.cnf" -extensions v3_ca \
      -keyout "$d/ca.key" -out "$d/ca.crt"
    # k8s_sign NAME SUBJECT EXTENSIONS
    k8s_sign() {
      openssl req -new -newkey rsa:2048 -nodes -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr"
      printf '%s\n' "$3" >"$d/$1.ext"
      openssl x509 -req -sha256 -days 3650 -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -extfile "$d/$1.ext" -out "$d/$1.crt"
    }
    k8s_sign apiserver "/CN=kube-apiserver" "basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,IP:$K8S_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    k8s_sign admin "/O=system:masters/CN=ticklake-admin" "basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key"
    openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub"
    openssl verify -CAfile "$d/ca.crt" "$d/apiserver.crt" "$d/admin.crt"
  )
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "generating the test cluster's certificates failed:" >&2; cat "$d/openssl.log" >&2; exit 1
  fi
}

# k8s_kubeconfig SERVER DIR OUT: an admin kubeconfig with the certificates embedded.
k8s_kubeconfig() {
  local b64=(base64 -w0)
  cat >"$3" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: ticklake-test
  cluster:
    server: $1
    certificate-authority-data: $("${b64[@]}" <"$2/ca.crt")
users:
- name: ticklake-admin
  user:
    client-certificate-data: $("${b64[@]}" <"$2/admin.crt")
    client-key-data: $("${b64[@]}" <"$2/admin.key")
contexts:
- name: ticklake-test
  context:
    cluster: ticklake-test
    user: ticklake-admin
    namespace: default
current-context: ticklake-test
KCFG
  chmod 600 "$3"
}

# --- starting ----------------------------------------------------------------------------------------

# k8s_wait NAME PID SECONDS CMD...: until CMD succeeds; if the process NAME (PID) dies or time runs
# out, print the end of $RUN/NAME.log and exit non-zero.
k8s_wait() {
  local name=$1 pid=$2 secs=$3 i
  shift 3
  for ((i = 0; i < secs * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited; the end of its log:" >&2; tail -n 60 "$RUN/$name.log" >&2 || true; exit 1
    fi
    sleep 0.25
  done
  echo "$name was not ready after ${secs}s; the end of its log:" >&2; tail -n 60 "$RUN/$name.log" >&2 || true; exit 1
}

# k8s_start: starts etcd, kube-apiserver and kube-controller-manager (adding them to `pids`), writes
# $RUN/kubeconfig and $RUN/restart-apiserver, and returns once the API is ready and the default
# ServiceAccount exists. Needs RUN, pids and free_port from test.sh.
k8s_start() {
  local d="$RUN/k8s"
  k8s_certs "$d"

  local etcd_port etcd_peer_port
  etcd_port=$(free_port); etcd_peer_port=$(free_port)
  log "starting etcd $ETCD_VERSION on 127.0.0.1:$etcd_port"
  "$ETCD" --name=ticklake --data-dir="$d/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster="ticklake=http://127.0.0.1:$etcd_peer_port" \
    --unsafe-no-fsync=true --log-level=warn </dev/null >"$RUN/etcd.log" 2>&1 &
  local etcd_pid=$!
  pids+=("$etcd_pid")
  echo "$etcd_pid" >"$d/etcd.pid"
  k8s_wait etcd "$etcd_pid" 60 curl -sf "http://127.0.0.1:$etcd_port/health"

  K8S_APISERVER_PORT=$(free_port)
  local server="https://127.0.0.1:$K8S_APISERVER_PORT"
  local args=(
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$K8S_APISERVER_PORT"
    --cert-dir="$d/apiserver-certs" --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key"
    --client-ca-file="$d/ca.crt"
    --etcd-servers="http://127.0.0.1:$etcd_port"
    --authorization-mode=Node,RBAC
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$d/sa.pub" --service-account-signing-key-file="$d/sa.key"
    --service-cluster-ip-range="$K8S_SERVICE_CIDR"
    --allow-privileged=true
    # The `kubernetes` Service's endpoints would be 127.0.0.1, which Endpoints/EndpointSlices reject.
    --endpoint-reconciler-type=none
    --profiling=false
    # On SIGTERM, end open watches after 2s instead of waiting for them until --request-timeout
    # (60s): a graceful restart then takes ~3s.
    --shutdown-watch-termination-grace-period=2s
  )
  # The helper for tests and benchmarks, also used for the first start.
  {
    echo '#!/usr/bin/env bash'
    echo '# Restarts the test cluster'"'"'s kube-apiserver with the same flags and port; returns once /readyz'
    echo '# is OK. `--kill` kills it with SIGKILL instead of stopping it gracefully with SIGTERM.'
    echo 'set -euo pipefail'
    printf 'pidfile=%q log=%q d=%q url=%q\n' "$d/kube-apiserver.pid" "$RUN/kube-apiserver.log" "$d" "$server/readyz"
    printf 'cmd=(%s)\n' "$(printf '%q ' "$KUBE_APISERVER" "${args[@]}")"
    cat <<'SCRIPT'
sig=TERM
[ "${1:-}" = --kill ] && sig=KILL
alive() { [ -d "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
if [ -s "$pidfile" ]; then
  old=$(cat "$pidfile")
  if alive "$old"; then
    kill -"$sig" "$old" 2>/dev/null || true
    for _ in $(seq 1 120); do alive "$old" || break; sleep 0.25; done
    if alive "$old"; then kill -KILL "$old" 2>/dev/null || true; sleep 0.5; fi
  fi
fi
echo "--- restart $(date -u +%FT%TZ) ---" >>"$log"
"${cmd[@]}" </dev/null >>"$log" 2>&1 &
pid=$!
echo "$pid" >"$pidfile"
for _ in $(seq 1 240); do
  if curl -sf --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" "$url" >/dev/null 2>&1; then exit 0; fi
  alive "$pid" || break
  sleep 0.25
done
echo "kube-apiserver did not come back; the end of its log:" >&2
tail -n 60 "$log" >&2
exit 1
SCRIPT
  } >"$RUN/restart-apiserver"
  chmod +x "$RUN/restart-apiserver"

  log "starting kube-apiserver $K8S_VERSION on 127.0.0.1:$K8S_APISERVER_PORT"
  "$KUBE_APISERVER" "${args[@]}" </dev/null >"$RUN/kube-apiserver.log" 2>&1 &
  local apiserver_pid=$!
  pids+=("$apiserver_pid")
  echo "$apiserver_pid" >"$d/kube-apiserver.pid"
  k8s_kubeconfig "$server" "$d" "$RUN/kubeconfig"
  k8s_wait kube-apiserver "$apiserver_pid" 120 \
    curl -sf --cacert "$d/ca.crt" --cert "$d/admin.crt" --key "$d/admin.key" "$server/readyz"

  log "starting kube-controller-manager $K8S_VERSION"
  "$KUBE_CONTROLLER_MANAGER" --kubeconfig="$RUN/kubeconfig" \
    --secure-port=0 --leader-elect=false --controllers='*' \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$d/sa.key" --root-ca-file="$d/ca.crt" \
    --cluster-signing-cert-file="$d/ca.crt" --cluster-signing-key-file="$d/ca.key" \
    --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
    </dev/null >"$RUN/kube-controller-manager.log" 2>&1 &
  local kcm_pid=$!
  pids+=("$kcm_pid")
  echo "$kcm_pid" >"$d/kube-controller-manager.pid"
  k8s_wait kube-controller-manager "$kcm_pid" 120 \
    "$KUBECTL" --kubeconfig="$RUN/kubeconfig" -n default get serviceaccount default

  mkdir -p "$RUN/bin"
  ln -sf "$KUBECTL" "$RUN/bin/kubectl"
  export PATH="$RUN/bin:$PATH"
  export TICKLAKE_TEST_KUBECONFIG="$RUN/kubeconfig"
  export TICKLAKE_TEST_KUBECTL="$KUBECTL"
  export TICKLAKE_TEST_APISERVER_RESTART="$RUN/restart-apiserver"
}

# k8s_stop: signals every process whose pid is in $RUN/k8s/*.pid (a kube-apiserver restarted by
# $RUN/restart-apiserver is not a child of test.sh), waits up to 15s for them to exit, then kills.
k8s_stop() {
  local f p pidfile_pids=()
  for f in "$RUN"/k8s/*.pid; do
    if [ -s "$f" ]; then pidfile_pids+=("$(cat "$f")"); fi
  done
  [ ${#pidfile_pids[@]} -gt 0 ] || return 0
  for p in "${pidfile_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pidfile_pids[@]}"; do
    for _ in $(seq 1 60); do k8s_alive "$p" || break; sleep 0.25; done
    if k8s_alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  done
}

# k8s_alive PID: the process exists and is not a zombie.
k8s_alive() { [ -d "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
