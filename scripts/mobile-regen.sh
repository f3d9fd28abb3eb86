#!/usr/bin/env bash
# Regenerates the checked-in UniFFI bindings from bindings-uniffi (run after changing its API):
#   bindings-android/src/main/kotlin/com/repro/line/ffi/reproline_ffi.kt
#   bindings-ios/Sources/ReproLineBindings/ReproLineBindings.swift
#   bindings-ios/ffi/ReproLineFFI.h, bindings-ios/ffi/ReproLineFFI.modulemap
# scripts/mobile-test.sh fails when these drift from the Rust code.
set -euo pipefail
source "$(dirname "$0")/mobile-common.sh"
export CARGO_TERM_COLOR=never

build_ffi_debug
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
generate_bindings "$tmp"
for f in "${GENERATED_FILES[@]}"; do
  mkdir -p "$(dirname "$f")"
  cp "$(gen_path "$tmp" "$f")" "$f"
  log "wrote ${f#"$ROOT"/}"
done
