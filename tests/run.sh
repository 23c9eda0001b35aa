#!/bin/bash
# tests/run.sh — every check of the project, as root: formatting, clippy, the
# unit tests and the integration tests (real binaries, real busybox bundles,
# each in a sandbox of fresh namespaces).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: the integration tests need root" >&2; exit 1; }
bash tests/deps.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The integration tests run the binaries: build them first.
bash build.sh --quiet
cargo test --workspace --quiet 2>&1 | tee target/test-output.txt
