#!/usr/bin/env bash
# Runs every test: unit tests, the bus conformance suite on the embedded log and on a real
# Apache Kafka broker (KRaft), the sink against a real MinIO, the exactly-once crash tests, and
# the operator's tests against a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager on loopback; no kubelet), a real SMTP server (Mailpit), moto's
# server mode for the AWS APIs (Glue, Athena, SNS, SQS, S3 bucket notifications), and a real
# PostgreSQL server for the catalog (Debian's package).
# Installs and starts what they need; caches downloads and builds in TICKLAKE_CACHE.
# `scripts/test.sh --services` only starts the services, prints their addresses and waits.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/k8s.sh

need_test_apt=()
command -v java >/dev/null || need_test_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_test_apt+=(maven)
command -v go >/dev/null || need_test_apt+=(golang)
command -v curl >/dev/null || need_test_apt+=(curl)
command -v openssl >/dev/null || need_test_apt+=(openssl)
command -v python3 >/dev/null || need_test_apt+=(python3)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_test_apt+=(postgresql)
install_system_packages "${need_test_apt[@]}"

# --- MinIO (real S3 server), built from the Go module proxy ---------------------------------
MINIO="$TICKLAKE_CACHE/bin/minio-$MINIO_VERSION"
if [ ! -x "$MINIO" ]; then
  log "building MinIO $MINIO_VERSION (once; cached in $TICKLAKE_CACHE/bin)"
  GOBIN="$TICKLAKE_CACHE/gobin" go install "github.com/minio/minio@$MINIO_VERSION"
  mv "$TICKLAKE_CACHE/gobin/minio" "$MINIO"
fi

# --- Mailpit (real SMTP server with an HTTP API), built from the Go module proxy ---------------
MAILPIT="$TICKLAKE_CACHE/bin/mailpit-$MAILPIT_VERSION"
if [ ! -x "$MAILPIT" ]; then
  log "building Mailpit $MAILPIT_VERSION (once; cached in $TICKLAKE_CACHE/bin)"
  GOBIN="$TICKLAKE_CACHE/gobin" go install "github.com/axllent/mailpit@$MAILPIT_VERSION"
  mv "$TICKLAKE_CACHE/gobin/mailpit" "$MAILPIT"
fi

# --- Helm, built from the Go module proxy with the ldflags of its Makefile: without them it
# believes the cluster is Kubernetes 1.20 and refuses charts that need newer ---------------------
HELM="$TICKLAKE_CACHE/bin/helm-$HELM_VERSION"
if [ ! -x "$HELM" ]; then
  log "building Helm $HELM_VERSION (once; cached in $TICKLAKE_CACHE/bin)"
  # Helm $HELM_VERSION is built against k8s.io/client-go v0.37 = Kubernetes 1.37 (its Makefile's rule).
  helm_ld="-w -s -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in pkg/lint/rules pkg/chartutil; do
    helm_ld+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
  done
  GOBIN="$TICKLAKE_CACHE/gobin" CGO_ENABLED=0 go install -trimpath -ldflags "$helm_ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$TICKLAKE_CACHE/gobin/helm" "$HELM"
fi

# --- prometheus-operator's CRDs (the module's example/ folder), for the chart's monitors --------
PROM_CRDS="$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/example/prometheus-operator-crd"
[ -f "$PROM_CRDS/monitoring.coreos.com_servicemonitors.yaml" ] || { echo "no prometheus-operator CRDs in $PROM_CRDS" >&2; exit 1; }

# --- moto (the AWS APIs' peer), from PyPI into a cached virtualenv -----------------------------
MOTO_VENV="$TICKLAKE_CACHE/moto-venv"
moto_wanted=$(sed -n 's/^moto\[server\]==//p' .ci/moto/requirements.txt)
if ! "$MOTO_VENV/bin/python" -c "import moto,sys; sys.exit(moto.__version__ != '$moto_wanted')" 2>/dev/null; then
  log "installing moto[server] $moto_wanted (once; cached in $MOTO_VENV)"
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q -r .ci/moto/requirements.txt
fi

# --- DuckDB (the SQL cross-check's independent engine), from PyPI into a cached virtualenv ----
DUCKDB_VENV="$TICKLAKE_CACHE/duckdb-venv"
duckdb_wanted=$(sed -n 's/^duckdb==//p' .ci/duckdb/requirements.txt)
if ! "$DUCKDB_VENV/bin/python" -c "import duckdb,sys; sys.exit(duckdb.__version__ != '$duckdb_wanted')" 2>/dev/null; then
  log "installing duckdb $duckdb_wanted (once; cached in $DUCKDB_VENV)"
  python3 -m venv "$DUCKDB_VENV"
  "$DUCKDB_VENV/bin/pip" install -q -r .ci/duckdb/requirements.txt
fi
export TICKLAKE_TEST_DUCKDB_PYTHON="$DUCKDB_VENV/bin/python"

# --- etcd, kube-apiserver, kube-controller-manager, kubectl from .ci/k8s and .ci/etcd -----------
k8s_build

# --- Apache Kafka broker jars from Maven Central ----------------------------------------------
KAFKA_LIBS="$TICKLAKE_CACHE/kafka-$KAFKA_VERSION/libs"
if [ ! -f "$KAFKA_LIBS/.complete" ]; then
  log "fetching Apache Kafka $KAFKA_VERSION jars (once)"
  mvn -q -B -f .ci/kafka/pom.xml -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS"
  touch "$KAFKA_LIBS/.complete"
fi

RUN=$(mktemp -d /tmp/ticklake-test.XXXXXX)
pids=()
PG_DIR=""
pg_stop() { :; } # redefined once PostgreSQL is started
cleanup() {
  pg_stop
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  k8s_stop # also a kube-apiserver that $TICKLAKE_TEST_APISERVER_RESTART started
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { # host port name
  for _ in $(seq 1 120); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "$3 did not start; its log:" >&2; cat "$RUN/$3.log" >&2 || true; exit 1
}

# --- start MinIO -------------------------------------------------------------------------------
MINIO_PORT=$(free_port)
log "starting MinIO on 127.0.0.1:$MINIO_PORT"
MINIO_ROOT_USER=ticklake MINIO_ROOT_PASSWORD=ticklake-secret MINIO_BROWSER=off \
  "$MINIO" server --quiet --address "127.0.0.1:$MINIO_PORT" "$RUN/minio-data" >"$RUN/minio.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$MINIO_PORT" minio

# --- start PostgreSQL (the catalog's server backend): a fresh cluster per run, trust auth on
# loopback only. PostgreSQL refuses to run as root, so as root it runs as the package's
# `postgres` user, in a folder of its own outside $RUN (which is private to this user) ---------
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_PORT=$(free_port)
PG_DIR=$(mktemp -d /tmp/ticklake-pg.XXXXXX)
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$PG_DIR"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi
pg_stop() {
  [ -n "$PG_DIR" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" stop -m fast >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}
log "starting PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U ticklake --auth=trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
  || { cat "$PG_DIR/initdb.log" >&2; exit 1; }
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w start \
  -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR -c fsync=off -c max_connections=50" >/dev/null \
  || { cat "$PG_DIR/postgres.log" >&2; exit 1; }

# --- Kafka's TLS material, made fresh for each run: a CA, the broker's certificate (127.0.0.1,
# localhost) and a client certificate for mutual TLS. $KAFKA_PKI holds the keys the broker uses;
# $KAFKA_CLIENT_TLS is laid out like the Secret a kafka.secretRef names (ca.crt, tls.crt,
# tls.key), which the workers read from TICKLAKE_KAFKA_TLS_DIR ---------------------------------
kafka_certs() { # PKI_DIR CLIENT_DIR
  local d=$1 c=$2 rc=0
  mkdir -p "$d" "$c"
  set +e # (as in k8s_certs: a subshell tested with `||` would run with set -e ignored)
  (
    set -e
    exec >"$d/openssl.log" 2>&1
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=ticklake-test-kafka-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" \
      -keyout "$d/ca.key" -out "$d/ca.crt"
    kafka_sign() { # NAME SUBJECT EXTENSIONS
      openssl req -new -newkey rsa:2048 -nodes -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr"
      printf '%s\n' "$3" >"$d/$1.ext"
      openssl x509 -req -sha256 -days 3650 -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -extfile "$d/$1.ext" -out "$d/$1.crt"
    }
    kafka_sign broker "/CN=localhost" "basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost"
    kafka_sign client "/CN=ticklake-test-client" "basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth"
    openssl verify -CAfile "$d/ca.crt" "$d/broker.crt" "$d/client.crt"
    # The broker's PEM keystore: its (unencrypted PKCS#8) key, then its certificate chain.
    cat "$d/broker.key" "$d/broker.crt" >"$d/broker-keystore.pem"
    cp "$d/ca.crt" "$c/ca.crt"; cp "$d/client.crt" "$c/tls.crt"; cp "$d/client.key" "$c/tls.key"
  )
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "generating Kafka's test certificates failed:" >&2; cat "$d/openssl.log" >&2; exit 1
  fi
}
KAFKA_PKI="$RUN/kafka-pki"; KAFKA_CLIENT_TLS="$RUN/kafka-client-tls"
kafka_certs "$KAFKA_PKI" "$KAFKA_CLIENT_TLS"

# --- start Kafka (KRaft, one node that is broker and controller) ------------------------------
# Listeners: PLAINTEXT; SSL with mutual TLS (a client certificate signed by the test CA is
# required), as Amazon MSK's TLS listener (9094) with client authentication; SASL_SSL with
# SCRAM-SHA-512, as MSK's SASL/SCRAM listener (9096). The SCRAM user is created at format time.
KAFKA_PORT=$(free_port); CONTROLLER_PORT=$(free_port); KAFKA_SSL_PORT=$(free_port); KAFKA_SASL_SSL_PORT=$(free_port)
KAFKA_SCRAM_USER=ticklake; KAFKA_SCRAM_PASSWORD=ticklake-secret
mkdir -p "$RUN/kafka"
cat >"$RUN/kafka/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_PKI/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$KAFKA_PKI/ca.crt
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$RUN/kafka/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
cat >"$RUN/kafka/log4j2.yaml" <<'L4J'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        Pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
L4J
KJAVA=(java -Xms512m -Xmx1g -Dlog4j2.configurationFile="$RUN/kafka/log4j2.yaml" -cp "$KAFKA_LIBS/*")
log "starting Apache Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1: $KAFKA_PORT (PLAINTEXT), $KAFKA_SSL_PORT (SSL, mutual TLS), $KAFKA_SASL_SSL_PORT (SASL_SSL, SCRAM-SHA-512)"
# A cluster id is 22 URL-safe base64 characters; one starting with '-' would be read as an
# option (1 run in 64 failed so), hence --cluster-id=… in one word.
"${KJAVA[@]}" kafka.tools.StorageTool format --standalone --cluster-id="$(python3 -c 'import uuid,base64;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')" \
  -c "$RUN/kafka/server.properties" --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
  >"$RUN/kafka-format.log" 2>&1 || { cat "$RUN/kafka-format.log"; exit 1; }
"${KJAVA[@]}" kafka.Kafka "$RUN/kafka/server.properties" >"$RUN/kafka.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$KAFKA_PORT" kafka
wait_port 127.0.0.1 "$KAFKA_SSL_PORT" kafka
wait_port 127.0.0.1 "$KAFKA_SASL_SSL_PORT" kafka

# --- start Mailpit (SMTP accepts any login, also without TLS; the API lists what arrived) -------
SMTP_PORT=$(free_port); MAILPIT_HTTP_PORT=$(free_port)
log "starting Mailpit $MAILPIT_VERSION: SMTP on 127.0.0.1:$SMTP_PORT, API on 127.0.0.1:$MAILPIT_HTTP_PORT"
"$MAILPIT" --smtp "127.0.0.1:$SMTP_PORT" --listen "127.0.0.1:$MAILPIT_HTTP_PORT" --database "$RUN/mailpit.db" \
  --smtp-auth-accept-any --smtp-auth-allow-insecure --disable-version-check \
  </dev/null >"$RUN/mailpit.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$SMTP_PORT" mailpit
wait_port 127.0.0.1 "$MAILPIT_HTTP_PORT" mailpit

# --- start the AWS peer: moto's server with the operations it lacks and fault injection -------------
MOTO_PORT=$(free_port)
log "starting moto (Glue, Athena, SNS, SQS, S3) on 127.0.0.1:$MOTO_PORT"
"$MOTO_VENV/bin/python" .ci/moto/peer.py -H 127.0.0.1 -p "$MOTO_PORT" >"$RUN/moto.log" 2>&1 &
pids+=($!)
wait_port 127.0.0.1 "$MOTO_PORT" moto

# --- start Kubernetes: etcd, kube-apiserver, kube-controller-manager (scripts/k8s.sh) ------------
k8s_start

export TICKLAKE_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
export TICKLAKE_TEST_KAFKA_SSL_BOOTSTRAP="127.0.0.1:$KAFKA_SSL_PORT"
export TICKLAKE_TEST_KAFKA_SASL_SSL_BOOTSTRAP="127.0.0.1:$KAFKA_SASL_SSL_PORT"
export TICKLAKE_TEST_KAFKA_SCRAM_USERNAME="$KAFKA_SCRAM_USER" TICKLAKE_TEST_KAFKA_SCRAM_PASSWORD="$KAFKA_SCRAM_PASSWORD"
export TICKLAKE_TEST_KAFKA_TLS_DIR="$KAFKA_CLIENT_TLS"
export TICKLAKE_TEST_SMTP_ADDR="127.0.0.1:$SMTP_PORT"
export TICKLAKE_TEST_MAILPIT_API="http://127.0.0.1:$MAILPIT_HTTP_PORT"
export TICKLAKE_TEST_S3_ENDPOINT="http://127.0.0.1:$MINIO_PORT"
export TICKLAKE_TEST_POSTGRES_URL="postgres://ticklake@127.0.0.1:$PG_PORT/postgres"
export TICKLAKE_TEST_HELM="$HELM"
export TICKLAKE_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export TICKLAKE_TEST_PROMETHEUS_CRDS="$PROM_CRDS"
export AWS_ACCESS_KEY_ID=ticklake AWS_SECRET_ACCESS_KEY=ticklake-secret AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export RUST_BACKTRACE=1

if [ "${1:-}" = "--services" ]; then
  # Developers: start the services, print their addresses, keep them until Ctrl-C.
  {
    env | grep -E '^(TICKLAKE_TEST_|AWS_)' | sort | sed 's/^/export /'
    echo "export PATH=\"$RUN/bin:\$PATH\""
  } | tee "${TICKLAKE_SERVICES_ENV:-/dev/null}"
  wait
fi

log "formatting check"
cargo fmt --all -- --check

log "building and running every test (release profile)"
cargo test --release --workspace --exclude ticklake-fuzz --features "ticklake-bus/kafka-tests ticklake-workers/kafka-tests ticklake/it ticklake/smtp-tests ticklake-operator/envtest ticklake-aws/aws-tests ticklake-workers/aws-tests ticklake-catalog/postgres-tests ticklake-catalog/s3-tests ticklake-query/duckdb-tests ticklake-query/s3-tests" -- --test-threads 2

# --- cargo fuzz: each target of fuzz/ briefly (nightly + libFuzzer; see fuzz/README.md) --------
FUZZ_SECONDS=${TICKLAKE_FUZZ_SECONDS:-30}
rustup run nightly rustc --version >/dev/null 2>&1 \
  || { echo "cargo fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
CARGO_FUZZ="$TICKLAKE_CACHE/cargo-fuzz/bin/cargo-fuzz"
if [ "$("$CARGO_FUZZ" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION (once; cached in $TICKLAKE_CACHE/cargo-fuzz)"
  CARGO_TARGET_DIR="$TICKLAKE_CACHE/cargo-fuzz/build" \
    cargo install --locked --root "$TICKLAKE_CACHE/cargo-fuzz" --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi
for target in $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ticklake-fuzz$'); do
  log "fuzzing $target for ${FUZZ_SECONDS}s"
  RUSTUP_TOOLCHAIN=nightly CARGO_TARGET_DIR="$TICKLAKE_CACHE/fuzz-target" "$CARGO_FUZZ" fuzz run --fuzz-dir fuzz "$target" \
    -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1
done
