#!/usr/bin/env bash
# The JVM per-call benchmark of the Android SDK (bindings-android/host-tests/src/Bench.kt):
# 100,000 linkLineID calls from Kotlin, warm JIT, against the mobile-profile library.
# Run scripts/mobile-test.sh first (it builds the library and the host-test jar).
#   scripts/mobile-bench.sh [CALLS]
set -euo pipefail
source "$(dirname "$0")/mobile-common.sh"
cd "$ROOT"
KOTLIN_HOME="${REPRO_LINE_KOTLIN_HOME:-$HOME/.cache/repro-line/kotlin}"
KOTLIN_STDLIB="$KOTLIN_HOME/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar"
JNA_JAR="${REPRO_LINE_JNA_JAR:-/usr/share/java/jna.jar}"
jar="$(ls -t "$TARGET_DIR"/mobile-host-tests/host-tests-*.jar 2>/dev/null | head -1 || true)"
if [ -z "$jar" ] || [ ! -f "$FFI_LIB_RELEASE" ]; then
  log "run scripts/mobile-test.sh first (host-test jar and $FFI_LIB_RELEASE)"
  exit 1
fi
log "$(uname -m), $(nproc) cores, $(java -version 2>&1 | head -1), $(date -u +%Y-%m-%d)"
java -Djna.library.path="$(dirname "$FFI_LIB_RELEASE")" -cp "$jar:$JNA_JAR:$KOTLIN_STDLIB" \
  com.repro.line.hosttests.BenchKt "${1:-100000}"
