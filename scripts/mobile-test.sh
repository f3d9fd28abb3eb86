#!/usr/bin/env bash
# Builds and tests the mobile SDKs on this machine (Linux; no Android SDK, Gradle or Swift needed).
#  1. installs what is missing: JNA (apt), kotlinc (npm, cached in ~/.cache/repro-line/kotlin)
#  2. builds repro-line-ffi (debug for the tests; `--profile mobile` for x86_64 and arm64):
#     fails when the stripped x86_64 library is above 1 MB or an arm64 LOAD segment is not
#     16 KB aligned; runs its Rust tests and the Rust runner of conformance/scenarios.json
#  3. regenerates the Kotlin and Swift bindings into a temp dir; fails when the checked-in ones drifted
#  4. checks the Swift wrapper calls only generated API, and gcc -fsyntax-only on the C header
#  5. compiles the Kotlin host tests (generated bindings + ReproLineCore.kt + ReproLine.kt against
#     a Context stub) and runs them on the JVM against the host library and the emulator
# Exits non-zero on any failure. Options: --no-release (skip the release size report),
# a test-name filter as the first other argument (e.g. `conformance`).
set -euo pipefail
source "$(dirname "$0")/mobile-common.sh"
cd "$ROOT"
export CARGO_TERM_COLOR=never

RELEASE=1
FILTER=""
for a in "$@"; do
  case "$a" in
    --no-release) RELEASE=0 ;;  # skips the size and 16 KB page checks
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) FILTER="$a" ;;
  esac
done

KOTLIN_VERSION=2.4.20
KOTLIN_HOME="${REPRO_LINE_KOTLIN_HOME:-$HOME/.cache/repro-line/kotlin}"
KOTLINC="$KOTLIN_HOME/node_modules/kotlin-compiler/bin/kotlinc"
KOTLIN_STDLIB="$KOTLIN_HOME/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar"
JNA_JAR="${REPRO_LINE_JNA_JAR:-/usr/share/java/jna.jar}"
TOKEN="mobile-test-token"
failures=0
fail() { log "FAIL: $*"; failures=$((failures + 1)); }
step() { printf '\n== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

tmp="$(mktemp -d)"
EMU_PID=""
cleanup() {
  if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

step "tools"
if [ ! -f "$JNA_JAR" ]; then
  log "installing JNA (apt: libjna-java libjna-jni)"
  as_root apt-get install -y libjna-java libjna-jni >/dev/null 2>&1 \
    || { as_root apt-get update >/dev/null && as_root apt-get install -y libjna-java libjna-jni >/dev/null; }
fi
if ! command -v javac >/dev/null; then
  log "installing a JDK (apt: openjdk-17-jdk-headless)"
  as_root apt-get install -y openjdk-17-jdk-headless >/dev/null 2>&1 \
    || { as_root apt-get update >/dev/null && as_root apt-get install -y openjdk-17-jdk-headless >/dev/null; }
fi
if [ ! -x "$KOTLINC" ]; then
  log "installing kotlinc $KOTLIN_VERSION (npm kotlin-compiler) into $KOTLIN_HOME"
  mkdir -p "$KOTLIN_HOME"
  npm install --prefix "$KOTLIN_HOME" --no-audit --no-fund --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null
fi
log "java: $(java -version 2>&1 | head -1); kotlinc: $KOTLIN_VERSION; jna: $JNA_JAR"

step "build"
build_ffi_debug
log "cargo build -p repro-line (the emulator CLI)"
cargo build -q -p repro-line
# CI ceiling for the stripped host (x86_64) library; the target is 900 KB (BENCHMARKS.md).
MAX_LIB_BYTES=1048576
# Android arm64 is linked with 16 KB pages (.cargo/config.toml); this is the alignment checked.
PAGE_16K=16384
PAGE_FLAGS="-C link-arg=-Wl,-z,max-page-size=16384 -C link-arg=-Wl,-z,common-page-size=16384"
ARM64_PROXY=aarch64-unknown-linux-gnu

if [ "$RELEASE" = 1 ]; then
  log "cargo build --profile mobile -p repro-line-ffi --lib"
  cargo build -q --profile mobile -p repro-line-ffi --lib
  bytes=$(wc -c <"$FFI_LIB_RELEASE")
  printf 'size: %-28s %10d bytes  %7.1f KB  (libreproline_ffi.%s, %s, profile mobile, stripped)\n' \
    "host library" "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1024 }')" "$DYLIB_EXT" "$(uname -m)"
  if [ "$bytes" -gt "$MAX_LIB_BYTES" ]; then
    fail "libreproline_ffi.$DYLIB_EXT is $bytes bytes stripped; the ceiling is $MAX_LIB_BYTES (1 MB): did an HTTP/TLS/async dependency come back?"
  fi

  # arm64: the Android NDK is not reachable here, so aarch64-unknown-linux-gnu (Debian's
  # cross gcc) stands in for aarch64-linux-android: same ISA and code, the same 16 KB page
  # flags as the Android targets in .cargo/config.toml.
  for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android; do
    if ! awk -v sec="[target.$t]" '$0 == sec {s=1; next} /^\[/ {s=0} s && /max-page-size=16384/ && /common-page-size=16384/ {f=1} END {exit !f}' .cargo/config.toml; then
      fail ".cargo/config.toml: [target.$t] must link with -z max-page-size=16384 and -z common-page-size=16384"
    fi
  done
  if ! rustup target list --installed 2>/dev/null | grep -qx "$ARM64_PROXY"; then
    log "rustup target add $ARM64_PROXY"
    rustup target add "$ARM64_PROXY" >/dev/null
  fi
  if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    log "installing the arm64 cross linker (apt: gcc-aarch64-linux-gnu)"
    as_root apt-get install -y gcc-aarch64-linux-gnu >/dev/null 2>&1 \
      || { as_root apt-get update >/dev/null && as_root apt-get install -y gcc-aarch64-linux-gnu >/dev/null; }
  fi
  log "cargo build --profile mobile -p repro-line-ffi --lib --target $ARM64_PROXY (16 KB pages)"
  arm64_lib="$TARGET_DIR/$ARM64_PROXY/mobile/libreproline_ffi.so"
  if CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$PAGE_FLAGS" \
    cargo build -q --profile mobile -p repro-line-ffi --lib --target "$ARM64_PROXY"; then
    bytes=$(wc -c <"$arm64_lib")
    printf 'size: %-28s %10d bytes  %7.1f KB  (libreproline_ffi.so, %s, profile mobile, stripped)\n' \
      "arm64 library" "$bytes" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1024 }')" "$ARM64_PROXY"
    # Every LOAD segment must be aligned to 16 KB (Google Play, Android 15+ targets).
    loads=0
    misaligned=0
    while read -r align; do
      loads=$((loads + 1))
      if [ $((align)) -lt "$PAGE_16K" ] || [ $((align % PAGE_16K)) -ne 0 ]; then
        log "  LOAD segment aligned $align"
        misaligned=$((misaligned + 1))
      fi
    done < <(readelf -lW "$arm64_lib" | awk '$1 == "LOAD" { print $NF }')
    if [ "$loads" -gt 0 ] && [ "$misaligned" -eq 0 ]; then
      log "readelf -lW: all $loads LOAD segments of the arm64 library are 16 KB aligned"
    else
      fail "the arm64 library has $misaligned of $loads LOAD segments not aligned to 16 KB"
    fi
  else
    fail "the arm64 build ($ARM64_PROXY)"
  fi
fi

step "rust: adapter tests and conformance scenarios"
if awk '/^\[profile\.release\]/{r=1;next} /^\[/{r=0} r && /^[[:space:]]*panic[[:space:]]*=/{found=1} END{exit !found}' Cargo.toml; then
  fail "Cargo.toml [profile.release] sets panic: the mobile library must keep unwinding so a Rust panic becomes ReproLineError.Internal"
fi
if ! awk '/^\[profile\.mobile\]/{r=1;next} /^\[/{r=0} r && /^[[:space:]]*panic[[:space:]]*=[[:space:]]*"unwind"/{found=1} END{exit !found}' Cargo.toml; then
  fail "Cargo.toml [profile.mobile] must keep panic = \"unwind\" so a Rust panic becomes ReproLineError.Internal"
fi
if cargo test -q -p repro-line-ffi >"$tmp/cargo-test.log" 2>&1 \
  && cargo test -q -p repro-line-core --test conformance >>"$tmp/cargo-test.log" 2>&1; then
  log "cargo test -p repro-line-ffi; cargo test -p repro-line-core --test conformance: ok"
else
  tail -40 "$tmp/cargo-test.log" >&2
  fail "cargo tests (above)"
fi

step "generated bindings are up to date"
generate_bindings "$tmp/gen"
for f in "${GENERATED_FILES[@]}"; do
  g="$(gen_path "$tmp/gen" "$f")"
  if [ ! -f "$f" ]; then
    fail "${f#"$ROOT"/} is missing; run scripts/mobile-regen.sh"
  elif ! diff -u "$f" "$g" >"$tmp/drift.diff"; then
    head -40 "$tmp/drift.diff" >&2
    fail "${f#"$ROOT"/} drifted from bindings-uniffi (diff above); run scripts/mobile-regen.sh and commit the result"
  else
    log "up to date: ${f#"$ROOT"/}"
  fi
done

step "swift wrapper and C header"
if python3 bindings-ios/scripts/check-wrapper-api.py "$SWIFT_GEN" bindings-ios/Sources/ReproLine/*.swift bindings-ios/Tests/ReproLineTests/*.swift; then
  :
else
  fail "the Swift wrapper calls API the generated Swift does not have"
fi
if echo '#include "ReproLineFFI.h"' | gcc -fsyntax-only -Wall -Werror -x c -D_Nonnull= -D_Nullable= -I "$(dirname "$HEADER_GEN")" -; then
  log "gcc -fsyntax-only: ${HEADER_GEN#"$ROOT"/} ok"
else
  fail "gcc -fsyntax-only on ${HEADER_GEN#"$ROOT"/}"
fi

step "kotlin host tests"
sources=(
  "$KOTLIN_GEN"
  bindings-android/src/main/kotlin/com/repro/line/ReproLineCore.kt
  bindings-android/src/main/kotlin/com/repro/line/HttpUrlConnectionTransport.kt
  bindings-android/src/main/kotlin/com/repro/line/ReproLine.kt
  bindings-android/host-tests/stubs/android/content/Context.java
  bindings-android/host-tests/stubs/android/os/Build.java
  bindings-android/host-tests/stubs/android/app/Application.java
  bindings-android/host-tests/src/*.kt
)
key="$( (echo "$KOTLIN_VERSION"; cat "${sources[@]}") | sha256sum | cut -c1-16)"
jar_dir="$TARGET_DIR/mobile-host-tests"
jar="$jar_dir/host-tests-$key.jar"
if [ -f "$jar" ]; then
  log "kotlinc: up to date ($(basename "$jar"))"
else
  log "kotlinc: compiling ${#sources[@]} sources"
  mkdir -p "$jar_dir"
  rm -f "$jar_dir"/host-tests-*.jar
  if "$KOTLINC" -nowarn -cp "$JNA_JAR" "${sources[@]}" -d "$tmp/host-tests.jar" 2>"$tmp/kotlinc.log"; then
    mv "$tmp/host-tests.jar" "$jar"
  else
    cat "$tmp/kotlinc.log" >&2
    fail "kotlinc"
  fi
fi

if [ -f "$jar" ]; then
  "$TARGET_DIR/debug/repro-line" emulator --port 0 --token "$TOKEN" >"$tmp/emulator.out" 2>"$tmp/emulator.err" &
  EMU_PID=$!
  url=""
  for _ in $(seq 1 100); do
    url="$(head -1 "$tmp/emulator.out" 2>/dev/null | sed -n 's/^listening on //p')"
    [ -n "$url" ] && break
    kill -0 "$EMU_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    cat "$tmp/emulator.err" >&2
    fail "the emulator did not start"
  else
    log "emulator at $url"
    if RUST_BACKTRACE=0 REPRO_LINE_EMULATOR_URL="$url" REPRO_LINE_TOKEN="$TOKEN" \
      REPRO_LINE_SCENARIOS="$ROOT/conformance/scenarios.json" REPRO_LINE_TEST_FILTER="$FILTER" \
      java -Djna.library.path="$(dirname "$FFI_LIB_DEBUG")" \
        -cp "$jar:$JNA_JAR:$KOTLIN_STDLIB" com.repro.line.hosttests.HostTestsKt 2>"$tmp/java.err"; then
      :
    else
      fail "kotlin host tests (stderr below)"
      tail -40 "$tmp/java.err" >&2
    fi
    if [ "$RELEASE" = 1 ]; then
      log "the panic test again, against the mobile library (panic = unwind in the mobile profile)"
      if RUST_BACKTRACE=0 REPRO_LINE_EMULATOR_URL="$url" REPRO_LINE_TOKEN="$TOKEN" \
        REPRO_LINE_SCENARIOS="$ROOT/conformance/scenarios.json" REPRO_LINE_TEST_FILTER="Rust panic" \
        java -Djna.library.path="$(dirname "$FFI_LIB_RELEASE")" \
          -cp "$jar:$JNA_JAR:$KOTLIN_STDLIB" com.repro.line.hosttests.HostTestsKt 2>"$tmp/java-release.err" \
          | sed 's/^/  release: /'; then
        :
      else
        fail "the panic test against the release library"
        tail -20 "$tmp/java-release.err" >&2
      fi
    fi
  fi
fi

echo
if [ "$failures" -gt 0 ]; then
  log "$failures check(s) failed"
  exit 1
fi
log "all checks passed"
