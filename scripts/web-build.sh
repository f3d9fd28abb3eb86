#!/usr/bin/env bash
# Builds bindings-wasm for browsers: release wasm (size-focused), wasm-opt -Oz, into
# bindings-wasm/npm/dist; the package's minified index.js (API + the hand-written loader of
# npm/src/wasm.js: the wasm has a raw ABI, no wasm-bindgen), auto.js and
# auto-reproio.js from the readable sources in npm/src; and the single-file build dist/repro-line.js.
# Prints the gzip -9 size of what a page loads (wasm + index.js + auto.js, each file
# gzipped on its own); fails above the ceiling (issue 15: 35 KB ceiling, 30 KB goal; BENCHMARKS.md §8).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/web-env.sh"
CRATE=$ROOT/bindings-wasm
DIST=$CRATE/npm/dist
WASM_STD_FEATURES=${WASM_STD_FEATURES:--Zbuild-std-features=optimize_for_size}
LIMIT=$((35 * 1024))
TARGET=$((30 * 1024))

# Size: no Debug formatting, no panic locations; with std rebuilt, panics abort without formatting.
SIZE_FLAGS="-Zfmt-debug=none -Zlocation-detail=none"
[ ${#WASM_BUILD_STD[@]} -eq 0 ] || SIZE_FLAGS="$SIZE_FLAGS -Zunstable-options -Cpanic=immediate-abort"
# uuid's randomness on wasm32 is getrandom's `custom` backend (src/abi.rs: crypto.getRandomValues).
export RUSTFLAGS="${RUSTFLAGS:-} $SIZE_FLAGS $WASM_RUSTFLAGS"

# No stale output: the tests must never run on what an earlier build (or the other route) left.
rm -f "$DIST"/repro_line_wasm*
cd "$CRATE"
log "cargo build --release --target wasm32-unknown-unknown --target-dir $WEB_TARGET_DIR"
"${WASM_CARGO_ENV[@]}" cargo build -q --release --target wasm32-unknown-unknown \
  --target-dir "$WEB_TARGET_DIR" ${WASM_BUILD_STD[@]+"${WASM_BUILD_STD[@]}"} \
  ${WASM_BUILD_STD[@]+$WASM_STD_FEATURES}
RAW=$WEB_TARGET_DIR/wasm32-unknown-unknown/release/repro_line_wasm.wasm

# The pre-wasm-opt copy, with names, at the path twiggy is pointed at (`bindgen/`: where the
# wasm-bindgen CLI wrote it before the raw ABI).
GEN=$WEB_TARGET_DIR/bindgen
rm -rf "$GEN" && mkdir -p "$GEN" "$DIST"
cp "$RAW" "$GEN/repro_line_wasm_bg.wasm"
# Exports `__data_end`, `__heap_base` (the linker's) and `__getrandom_v03_custom` (a `#[no_mangle]`
# getrandom links to, not the page) go first, so -Oz can drop what only they kept. --converge
# repeats -Oz until the module stops shrinking (-88 B gzip). --strip-target-features drops a
# section only tools read (-115 B). --low-memory-unused lets -Oz fold constant address offsets into
# loads and stores (-296 B): it assumes the program never touches addresses below 1024, which holds
# because rustc links wasm32 with the stack first (the stack is [0, 1 MiB), growing down from
# 1 MiB; data and heap above it), so only a stack 1 KiB short of overflowing would reach them.
# That layout is checked, not assumed: the stack pointer starts at or below the first data segment.
LAYOUT=$("$(dirname "$WASM_OPT")/wasm-dis" "$GEN/repro_line_wasm_bg.wasm" | awk '
  /global \$__stack_pointer/ { match($0, /i32.const [0-9]+/); sp = substr($0, RSTART + 10, RLENGTH - 10) }
  /^ *\(data / && data == "" { match($0, /i32.const [0-9]+/); data = substr($0, RSTART + 10, RLENGTH - 10) }
  END { print sp + 0, data + 0 }')
read -r STACK_TOP DATA_START <<<"$LAYOUT"
if [ "$STACK_TOP" -lt 1024 ] || [ "$DATA_START" -lt "$STACK_TOP" ]; then
  echo "FAIL: the wasm is not linked stack first (stack top $STACK_TOP, data at $DATA_START): --low-memory-unused would be wrong" >&2
  exit 1
fi
FEATURES=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals)
# --one-caller-inline-max-function-size=60: a function with one caller is inlined only when it is
# small; the larger ones stay functions of their own, which gzip compresses better (-254 B after
# the order search; the default inlines every one-caller function; 40-60 measured best, BENCHMARKS §8).
# --always-inline-max-function-size=3 (default 2): -38 B after the order search at 3b9cbe6 (4: +14).
"$WASM_OPT" --remove-exports --pass-arg='remove-exports@__*' --one-caller-inline-max-function-size=60 \
  --always-inline-max-function-size=3 \
  -Oz --converge "${FEATURES[@]}" \
  --strip-debug --strip-producers --strip-target-features --low-memory-unused \
  "$GEN/repro_line_wasm_bg.wasm" -o "$DIST/repro_line_wasm_bg.wasm"
# The same functions in an order gzip compresses better (scripts/wasm-order.py: the best of three
# seeded searches, one per core; deterministic).
python3 "$ROOT/scripts/wasm-order.py" "$WASM_OPT" "$DIST/repro_line_wasm_bg.wasm" "$DIST/repro_line_wasm_bg.wasm" \
  "${WASM_ORDER_MOVES:-6000}" "${FEATURES[@]}" --strip-debug --strip-producers
rm -rf "$DIST/snippets"

# One file for a <script type="module"> tag (what the snippet loads): wasm embedded, loader, API,
# auto.js's install; built with esbuild (from npm, in the cache dir like binaryen). The package says
# sideEffects: false for bundlers; --ignore-annotations keeps the install and the embedded wasm here.
ESBUILD_VERSION=0.28.2
ESBUILD=$WEB_CACHE/node_modules/.bin/esbuild
if [ "$("$ESBUILD" --version 2>/dev/null)" != "$ESBUILD_VERSION" ]; then
  log "npm install esbuild@$ESBUILD_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$WEB_CACHE" "esbuild@$ESBUILD_VERSION" >/dev/null
fi
# The package's entry points, minified (readable sources in npm/src): index.js carries the loader
# (one file fewer to load); auto.js and auto-reproio.js each carry install.js (it has no state of
# its own; one file fewer for the snippet to load: -96 B gzip) and import ./index.js, which stays
# a module of its own so a page has one instance of the client.
# index.node.js is Node's entry (package.json's `node` condition): index.js with the wasm read from
# its file first (npm/src/node.js), so the browsers' index.js carries no Node branch (-78 B gzip).
rm -f "$CRATE"/npm/index*.js "$CRATE/npm/install.js" "$CRATE"/npm/auto*.js
"$ESBUILD" "$CRATE/npm/src/index.js" --bundle --format=esm --minify --log-level=warning \
  --outfile="$CRATE/npm/index.js"
# --ignore-annotations: the package's `sideEffects: false` would drop src/node-load.js, imported for its effect.
"$ESBUILD" "$CRATE/npm/src/node.js" --bundle --format=esm --platform=node --minify --ignore-annotations --log-level=warning \
  --outfile="$CRATE/npm/index.node.js"
"$ESBUILD" "$CRATE/npm/src/auto.js" "$CRATE/npm/src/auto-reproio.js" --bundle --external:./index.js \
  --format=esm --minify --log-level=warning --outdir="$CRATE/npm"
# terser compresses esbuild's output a little further (-136 B gzip over the three files a page loads).
TERSER_VERSION=5.51.4
TERSER=$WEB_CACHE/node_modules/.bin/terser
if [ "$("$TERSER" --version 2>/dev/null)" != "terser $TERSER_VERSION" ]; then
  log "npm install terser@$TERSER_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$WEB_CACHE" "terser@$TERSER_VERSION" >/dev/null
fi
for f in index auto auto-reproio; do
  "$TERSER" "$CRATE/npm/$f.js" --module --compress --mangle --output "$CRATE/npm/$f.js"
done
# Node's auto.js and auto-reproio.js: the same, importing Node's entry (one instance per program).
for f in auto auto-reproio; do
  sed 's#from"./index.js"#from"./index.node.js"#' "$CRATE/npm/$f.js" > "$CRATE/npm/$f.node.js"
  if ! grep -q 'from"./index.node.js"' "$CRATE/npm/$f.node.js" || grep -q '"./index.js"' "$CRATE/npm/$f.node.js"; then
    echo "FAIL: npm/$f.node.js does not import ./index.node.js (did the minified import change shape?)" >&2
    exit 1
  fi
done
"$ESBUILD" "$CRATE/npm/single/entry.js" --bundle --format=esm --minify --ignore-annotations --loader:.wasm=binary \
  --log-level=warning --outfile="$DIST/repro-line.js"
# The npm package's README and licence are the crate's.
cp "$CRATE/README.md" "$CRATE/npm/README.md"

gz() { gzip -9 -c "$@" | wc -c; }
WASM_GZ=$(gz "$DIST/repro_line_wasm_bg.wasm")
INDEX_GZ=$(gz "$CRATE/npm/index.js")
REST_GZ=$(gz "$CRATE/npm/auto.js")
TOTAL=$((WASM_GZ + INDEX_GZ + REST_GZ))
echo "wasm $(wc -c < "$DIST/repro_line_wasm_bg.wasm") B raw (before wasm-opt $(wc -c < "$GEN/repro_line_wasm_bg.wasm") B)"
echo "route: $WEB_ROUTE"
echo "gzip -9: wasm $WASM_GZ B + index.js (API + loader) $INDEX_GZ B + auto.js (snippet install) $REST_GZ B = $TOTAL B ($((TOTAL / 1024)) KB)"
echo "single file dist/repro-line.js (wasm embedded): $(wc -c < "$DIST/repro-line.js") B raw, $(gz "$DIST/repro-line.js") B gzip -9"
if [ "$TOTAL" -gt "$LIMIT" ]; then
  echo "FAIL: $TOTAL B is above the $((LIMIT / 1024)) KB ceiling" >&2
  exit 1
fi
[ "$TOTAL" -le "$TARGET" ] || echo "note: above the 30 KB goal"
