#!/usr/bin/env bash
# Builds bindings-ios/ReproLineFFI.xcframework from bindings-uniffi (static library per platform
# + the checked-in generated header and module map). Needs macOS with Xcode and rustup.
#   bindings-ios/scripts/build-xcframework.sh [--with-macos] [--debug]
# Slices: ios-arm64 (aarch64-apple-ios); ios-arm64_x86_64-simulator (aarch64-apple-ios-sim +
# x86_64-apple-ios, joined with lipo); with --with-macos also macos-arm64_x86_64 (for `swift test`).
# NOT RUN on the Linux machine that wrote it (no Xcode there); see bindings-ios/README.md.
set -euo pipefail
IOS_DIR="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="$(cd "$IOS_DIR/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PROFILE=mobile  # root Cargo.toml [profile.mobile]: opt-level z, fat LTO, panic = unwind
MACOS=0
for a in "$@"; do
  case "$a" in
    --with-macos) MACOS=1 ;;
    --debug) PROFILE=debug ;;
    -h|--help) sed -n 2,8p "$0"; exit 0 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh needs macOS with Xcode" >&2; exit 1; }
command -v xcodebuild >/dev/null || { echo "xcodebuild not found: install Xcode" >&2; exit 1; }

IOS_TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
MAC_TARGETS=(aarch64-apple-darwin x86_64-apple-darwin)
targets=("${IOS_TARGETS[@]}")
[ "$MACOS" = 1 ] && targets+=("${MAC_TARGETS[@]}")
rustup target add "${targets[@]}"

cargo_flags=(-p repro-line-ffi --lib)
[ "$PROFILE" = mobile ] && cargo_flags+=(--profile mobile)
export IPHONEOS_DEPLOYMENT_TARGET=13.0 MACOSX_DEPLOYMENT_TARGET=11.0
for t in "${targets[@]}"; do
  echo "cargo build --target $t ($PROFILE)"
  (cd "$ROOT" && cargo build "${cargo_flags[@]}" --target "$t")
done
lib() { echo "$TARGET_DIR/$1/$PROFILE/libreproline_ffi.a"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Headers: the checked-in generated header, its module map renamed to module.modulemap.
mkdir -p "$work/headers"
cp "$IOS_DIR/ffi/ReproLineFFI.h" "$work/headers/"
cp "$IOS_DIR/ffi/ReproLineFFI.modulemap" "$work/headers/module.modulemap"

mkdir -p "$work/ios-sim" "$work/macos"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$work/ios-sim/libreproline_ffi.a"
args=(
  -library "$(lib aarch64-apple-ios)" -headers "$work/headers"
  -library "$work/ios-sim/libreproline_ffi.a" -headers "$work/headers"
)
if [ "$MACOS" = 1 ]; then
  lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$work/macos/libreproline_ffi.a"
  args+=(-library "$work/macos/libreproline_ffi.a" -headers "$work/headers")
fi
out="$IOS_DIR/ReproLineFFI.xcframework"
rm -rf "$out"
xcodebuild -create-xcframework "${args[@]}" -output "$out"
echo "wrote $out"
for f in "$(lib aarch64-apple-ios)"; do
  echo "device slice: $(wc -c <"$f") bytes (static library, before app linking and dead-code stripping)"
done
