#!/usr/bin/env bash
# Runs the example pipeline on this machine with embedded defaults: the embedded log instead
# of Kafka, ./.ticklake/s3 instead of S3. Ctrl-C stops it; running it again continues.
# Extra arguments go to `ticklake local up` (e.g. --duration-secs 30).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
install_system_packages
log "building ticklake (release; first build takes a while on 2 cores)"
cargo build --release -p ticklake
exec "$CARGO_TARGET_DIR/release/ticklake" local up -f deploy/examples/ "$@"
