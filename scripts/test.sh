#!/usr/bin/env bash
# Every test suite of the project, from a fresh clone. Installs what it needs
# (idempotently) and starts the servers the tests use. Exit non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
start=$(date +%s)
step() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "rust tests (core, emulator, cli, bulk)"
bash scripts/ensure-moto.sh
cargo test --workspace --locked

for extra in scripts/mobile-test.sh scripts/web-test.sh; do
  if [ -f "$extra" ]; then
    step "$extra"
    bash "$extra"
  fi
done

step "all suites passed"
