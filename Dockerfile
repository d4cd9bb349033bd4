# syntax=docker/dockerfile:1
#
# ticklake's two container images, from one shared build:
#
#   VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
#   docker build --target operator --build-arg VERSION=$VERSION -t ghcr.io/ticklake/ticklake-operator:$VERSION .
#   docker build --target worker   --build-arg VERSION=$VERSION -t ghcr.io/ticklake/ticklake:$VERSION .
#
# `operator` runs `ticklake-operator`; `worker` runs `ticklake`, the binary of the producer and
# sink pods. The operator renders those pods with `ghcr.io/ticklake/ticklake:<its own version>`
# (operator/src/render.rs) and only `args` (`worker producer|sink --resource …`), so the worker
# image's ENTRYPOINT is the bare binary.
#
# Version: the workspace version in Cargo.toml (`[workspace.package] version`) is the only
# one. This file has none of its own: VERSION is required, only feeds the image labels, and
# the build fails when it differs from the version compiled into the binaries. Tag the image
# with the same VERSION.
#
# Runtime base: debian:bookworm-slim, not gcr.io/distroless/cc-debian12. `ldd` on the release
# binaries shows libc, libm, libgcc_s, the loader, libz.so.1 (librdkafka's zlib) and
# libssl.so.3 / libcrypto.so.3 (librdkafka's OpenSSL, for Kafka over TLS and SASL/SCRAM),
# linked dynamically against the system's; distroless cc-debian12 has libc6, libssl3,
# libgcc-s1, libgomp1 and libstdc++6 but no zlib1g. Its dynamic libraries are installed
# explicitly below, plus ca-certificates: the workers verify S3, SMTP and webhook TLS against
# the system roots (rustls-native-certs), and Kafka brokers too when the kafka.secretRef Secret
# has no ca.crt (librdkafka through OpenSSL's default paths, e.g. Amazon MSK's certificates).
# The builder is the same Debian release (bookworm, glibc 2.36), so the binaries find the
# glibc they were linked against. operator/tests/image.rs checks that the binaries' `ldd`
# output needs only what this base provides.
#
# User: 65532:65532 (numeric, so the kubelet can enforce `runAsNonRoot`; the same uid as
# distroless `nonroot` and the operator's worker pods, render::WORKER_UID).
#
# Writable paths: none on the root filesystem. Both images run with readOnlyRootFilesystem;
# `ticklake worker producer|sink` and `ticklake-operator` write no files (logs go to stderr,
# metrics are served on 9464 and 8080), and the worker pods still get an emptyDir at /tmp
# (256Mi) for any library that wants a temporary file. `ticklake local up`, `notify` and
# `lake verify` write under --data-dir (default ./.ticklake): run them with a writable volume
# there, e.g. `-v "$PWD/.ticklake:/data" ... local up --data-dir /data`.
#
# The binaries are stripped of debug info (function names stay in panics' backtraces; file
# and line numbers do not): the release profile's line tables make them ~6x bigger.
#
# Needs BuildKit (the default builder of current Docker) for the cache mounts.

ARG VERSION

# ---------------------------------------------------------------------------------------------
# builder: both binaries, once
# ---------------------------------------------------------------------------------------------
# Pinned toolchain: the one the workspace is built and tested with. It must be >= Cargo.toml's
# rust-version and >= every locked dependency's rust-version (checked by operator/tests/image.rs).
FROM rust:1.95.0-bookworm AS builder

# librdkafka is built from its bundled source (rdkafka's cmake-build): cmake and a C/C++
# toolchain; zlib1g-dev and pkg-config so libz-sys links the system zlib; libssl-dev for the
# `ssl` feature (openssl-sys, linked dynamically against the system's OpenSSL 3: SSL, SASL_SSL
# and SCRAM). libcurl's headers are what scripts/lib.sh installs too; rdkafka's `curl` feature
# is off, so they are only there should it be enabled. The rust image (buildpack-deps) already
# has all but cmake; they are named so as not to rely on it.
# Unpinned versions (DL3008): bookworm's point releases only take security fixes.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake g++ gcc make pkg-config \
        libcurl4-openssl-dev libssl-dev zlib1g-dev; \
    rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The registry and target folders are cache mounts (kept between builds, not in the image),
# so the binaries are copied out of target/ within the same step.
RUN --mount=type=cache,id=ticklake-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=ticklake-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=ticklake-target,target=/src/target \
    set -eux; \
    cargo build --release --locked -p ticklake -p ticklake-operator; \
    mkdir -p /out; \
    strip --strip-debug -o /out/ticklake target/release/ticklake; \
    strip --strip-debug -o /out/ticklake-operator target/release/ticklake-operator

# After the build, so a new VERSION does not invalidate the cargo step's cache.
ARG VERSION
RUN set -eu; \
    built="$(/out/ticklake --version)"; built="${built##* }"; \
    op="$(/out/ticklake-operator --version)"; op="${op##* }"; \
    if [ -z "${VERSION:-}" ]; then \
        echo "pass --build-arg VERSION=$built (the workspace version in Cargo.toml)" >&2; exit 1; \
    fi; \
    if [ "$VERSION" != "$built" ] || [ "$VERSION" != "$op" ]; then \
        echo "VERSION=$VERSION but the binaries are ticklake $built, ticklake-operator $op" >&2; exit 1; \
    fi

# ---------------------------------------------------------------------------------------------
# runtime: what both final images share
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# zlib1g: libz.so.1 (librdkafka). libssl3: libssl.so.3 and libcrypto.so.3 (librdkafka's TLS
# and SCRAM). ca-certificates: TLS roots. libc6 and libgcc-s1 are part of every Debian
# system. The nonroot user/group make uid 65532 show up with a name.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates libssl3 zlib1g; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 65532 nonroot; \
    useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin nonroot

LABEL org.opencontainers.image.source="https://github.com/ticklake/ticklake" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="ticklake"

# ---------------------------------------------------------------------------------------------
# operator: ghcr.io/ticklake/ticklake-operator:<version>
# ---------------------------------------------------------------------------------------------
FROM runtime AS operator
ARG VERSION
LABEL org.opencontainers.image.title="ticklake-operator" \
      org.opencontainers.image.description="ticklake's Kubernetes operator: StockStream, S3Sink and AlertSubscription into workers" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /out/ticklake-operator /usr/local/bin/ticklake-operator
USER 65532:65532
# /metrics, /healthz, /readyz (--metrics-addr)
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ticklake-operator"]

# ---------------------------------------------------------------------------------------------
# worker: ghcr.io/ticklake/ticklake:<version> (`ticklake worker producer|sink`, and the CLI)
# ---------------------------------------------------------------------------------------------
FROM runtime AS worker
ARG VERSION
LABEL org.opencontainers.image.title="ticklake" \
      org.opencontainers.image.description="ticklake's workers (producer, sink) and command-line tool" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /out/ticklake /usr/local/bin/ticklake
USER 65532:65532
# /metrics, /healthz, /readyz, /status (--metrics-addr)
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/ticklake"]
CMD ["--help"]
