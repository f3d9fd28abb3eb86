#!/usr/bin/env bash
# Browser SDK tests, idempotent: builds the wasm package (scripts/web-build.sh), runs the client's
# unit tests through the raw ABI in Node (tests/node.mjs), the allocator's wasm-bindgen-test tests
# and the native unit tests, starts the emulator, runs the conformance scenarios
# through the JS API in Node, then end-to-end tests in headless Chromium (snippet, reload,
# an endpoint that never answers, two tabs, full localStorage, the LIFF and plain examples). Last line: `N passed, N failed`.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/web-env.sh" || exit 1
PASSED=0
FAILED=0
EMU_PID=
WORK=$(mktemp -d)
cleanup() {
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# Adds the `N passed, N failed` counts of a runner's output (cargo's `test result:` lines or ours).
count() {
  local out=$1 p f
  if grep -q '^test result:' "$out"; then
    p=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$out" | awk '{s += $1} END {print s + 0}')
    f=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$out" | awk '{s += $1} END {print s + 0}')
  else
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed\(, [0-9]* skipped\)\{0,1\}$/\1/p' "$out" | tail -n1)
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed\(, [0-9]* skipped\)\{0,1\}$/\2/p' "$out" | tail -n1)
  fi
  PASSED=$((PASSED + ${p:-0}))
  FAILED=$((FAILED + ${f:-0}))
}

check() { # name, then a command; one pass or one fail
  local name=$1
  shift
  if "$@"; then PASSED=$((PASSED + 1)); echo "ok   $name"; else FAILED=$((FAILED + 1)); echo "FAIL $name"; fi
}

# 1. Build (the size ceiling is one check; the tests still run on what was built).
check "web-build.sh (size ceiling 35 KB gzip: wasm + index.js + auto.js)" bash "$ROOT/scripts/web-build.sh"
if [ ! -f "$ROOT/bindings-wasm/npm/dist/repro_line_wasm_bg.wasm" ]; then
  echo "no build output; stopping"
  echo "$PASSED passed, $((FAILED + 1)) failed"
  exit 1
fi

# 1b. The npm package as `npm pack` makes it.
echo "== npm package"
node "$ROOT/bindings-wasm/tests/pack.mjs" > "$WORK/pack.txt" 2>&1
cat "$WORK/pack.txt"
count "$WORK/pack.txt"
grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$WORK/pack.txt" || FAILED=$((FAILED + 1))

# 2. Unit tests of the client through the loader's raw ABI, on the built wasm (Node).
echo "== client unit tests (Node, raw ABI)"
node "$ROOT/bindings-wasm/tests/node.mjs" > "$WORK/node.txt" 2>&1
cat "$WORK/node.txt"
count "$WORK/node.txt"
grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$WORK/node.txt" || FAILED=$((FAILED + 1))

# 2a. The allocator's tests in wasm under Node (wasm-bindgen-test, a dev-dependency only).
echo "== wasm-bindgen-test (Node)"
(cd "$ROOT/bindings-wasm" && "${WASM_CARGO_ENV[@]}" RUSTFLAGS="$WASM_RUSTFLAGS" cargo test --target wasm32-unknown-unknown \
  --target-dir "$WEB_TARGET_DIR" ${WASM_BUILD_STD[@]+"${WASM_BUILD_STD[@]}"} --tests 2>&1) > "$WORK/unit.txt"
UNIT_RC=$?
grep -E '^(test |test result:)' "$WORK/unit.txt"
count "$WORK/unit.txt"
if [ $UNIT_RC -ne 0 ] && ! grep -q '^test result:' "$WORK/unit.txt"; then
  tail -n 30 "$WORK/unit.txt"
  FAILED=$((FAILED + 1))
fi

# 2b. Native unit tests of the crate's I/O-free parts (tab coordination), with the default toolchain.
echo "== native unit tests (tab coordination)"
(cd "$ROOT/bindings-wasm" && env -u RUSTFLAGS cargo test --lib --target-dir "$ROOT/target-wasm/native" 2>&1) > "$WORK/native.txt"
NATIVE_RC=$?
grep -E '^(test |test result:)' "$WORK/native.txt"
count "$WORK/native.txt"
if [ $NATIVE_RC -ne 0 ] && ! grep -q '^test result:' "$WORK/native.txt"; then
  tail -n 30 "$WORK/native.txt"
  FAILED=$((FAILED + 1))
fi

# 3. Emulator (the CLI from the main workspace, built with the default toolchain if missing).
CLI=$ROOT/target/debug/repro-line
if [ ! -x "$CLI" ]; then
  echo "== building the CLI (emulator)"
  (cd "$ROOT" && cargo build -q --bin repro-line) || { echo "cannot build the CLI"; echo "$PASSED passed, $((FAILED + 1)) failed"; exit 1; }
fi
CORS_FLAG=--cors
"$CLI" emulator --help 2>/dev/null | grep -q -- '--cors' || CORS_FLAG=--cors-origin
"$CLI" emulator --port 0 --token T "$CORS_FLAG" '*' > "$WORK/emu.out" 2> "$WORK/emu.err" &
EMU_PID=$!
EMU=
for _ in $(seq 1 100); do
  EMU=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$WORK/emu.out" | head -n1)
  [ -n "$EMU" ] && break
  sleep 0.1
done
if [ -z "$EMU" ]; then
  echo "emulator did not start:"; cat "$WORK/emu.err"
  echo "$PASSED passed, $((FAILED + 1)) failed"
  exit 1
fi
echo "== emulator at $EMU"

# 4. Conformance scenarios through the JS API in Node.
echo "== conformance (Node, JS API)"
node "$ROOT/bindings-wasm/tests/conformance.mjs" "$EMU" > "$WORK/conf.txt" 2>&1
cat "$WORK/conf.txt"
count "$WORK/conf.txt"
grep -qE '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$WORK/conf.txt" || FAILED=$((FAILED + 1))
check "web package → repro-line gateway → Format 1 files in moto (gateway.mjs)" node "$ROOT/bindings-wasm/tests/gateway.mjs" "$CLI" "$EMU"

# 5. Headless Chromium end-to-end.
apt_install chromium chromium-driver
PW_VERSION=1.65.1
PLAYWRIGHT_CORE=$WEB_CACHE/node_modules/playwright-core
if [ "$(node -p "require('$PLAYWRIGHT_CORE/package.json').version" 2>/dev/null)" != "$PW_VERSION" ]; then
  npm install --silent --no-audit --no-fund --prefix "$WEB_CACHE" "playwright-core@$PW_VERSION" >/dev/null
fi
echo "== end-to-end (headless Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'))"
PLAYWRIGHT_CORE=$PLAYWRIGHT_CORE node "$ROOT/bindings-wasm/tests/e2e.mjs" "$EMU" > "$WORK/e2e.txt" 2>&1
cat "$WORK/e2e.txt"
count "$WORK/e2e.txt"
grep -qE '^[0-9]+ passed, [0-9]+ failed$' "$WORK/e2e.txt" || FAILED=$((FAILED + 1))

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
