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
# bindings-wasm is its own workspace (it builds std for wasm32), so the root commands above miss it.
(cd bindings-wasm && cargo fmt -- --check)

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
bash scripts/wasm-clippy.sh

step "rust tests (core, emulator, cli, bulk)"
bash scripts/ensure-moto.sh
# The gateway's PostgreSQL tests (cli/tests/gateway_pg.rs) fail on CI without this URL.
REPRO_LINE_TEST_PG_URL=$(bash scripts/ensure-postgres.sh)
export REPRO_LINE_TEST_PG_URL
cargo test --workspace --locked

step "web: wasm build (size ceiling), wasm allocator tests, Node tests of the built package, conformance in Node, headless Chromium e2e"
bash scripts/web-test.sh

step "mobile: UniFFI build, Kotlin/Swift binding drift check, Kotlin host tests against the emulator"
bash scripts/mobile-test.sh

step "all suites passed"
