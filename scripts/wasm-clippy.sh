#!/usr/bin/env bash
# clippy -D warnings for bindings-wasm (its own workspace) on the wasm32 target. It uses rustup's
# clippy with the prebuilt wasm32 std (a check needs no -Zbuild-std), so it runs on the rustup route;
# where rustup cannot add the target (the Debian route) clippy still checks the crate for the host.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/bindings-wasm"
TARGET_ARGS=(--target wasm32-unknown-unknown)
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
  && ! timeout 300 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
  echo "[wasm-clippy] rustup has no wasm32 target here: checking bindings-wasm for the host" >&2
  TARGET_ARGS=()
fi
# uuid's wasm32 randomness: getrandom's `custom` backend (src/abi.rs), as in scripts/web-env.sh.
[ ${#TARGET_ARGS[@]} -eq 0 ] || export RUSTFLAGS='--cfg getrandom_backend="custom"'
cargo clippy ${TARGET_ARGS[@]+"${TARGET_ARGS[@]}"} --all-targets --locked \
  --target-dir "$ROOT/target-wasm/clippy" -- -D warnings
