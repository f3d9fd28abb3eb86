# Sourced by scripts/web-build.sh and scripts/web-test.sh: makes a wasm32 toolchain,
# the wasm-bindgen test runner (tests/alloc.rs only: the package itself has no wasm-bindgen) and
# binaryen available, installing only what is missing.
# Exports WASM_CARGO_ENV (a command prefix), WASM_RUSTFLAGS, WASM_BINDGEN, WASM_OPT, WEB_CACHE,
# WEB_TARGET_DIR.

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
WEB_CACHE=${REPRO_WEB_CACHE:-$HOME/.cache/repro-line-web}
WEB_TARGET_BASE=${WEB_TARGET_BASE:-$ROOT/target-wasm}
mkdir -p "$WEB_CACHE"

# The test runner must equal the locked wasm-bindgen (a dev-dependency, via wasm-bindgen-test) exactly.
WASM_BINDGEN_VERSION=$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"/\1/p;}' "$ROOT/bindings-wasm/Cargo.lock")
# Every wasm32 build of the crate (build, tests, clippy): uuid's v4 randomness is getrandom's
# `custom` backend, which src/abi.rs implements with the page's crypto.getRandomValues.
WASM_RUSTFLAGS='--cfg getrandom_backend="custom"'
BINARYEN_VERSION=132.0.0

log() { echo "[web] $*" >&2; }

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
}

# 1. A Rust that targets wasm32-unknown-unknown. Two routes, both built the same way (std rebuilt
#    from source with -Zbuild-std, panics that abort without formatting), so the size does not
#    depend on the route:
#    - rustup (the normal one; new machines come with the target): rustup's wasm32 target plus the
#      rust-src component. Without rust-src it falls back to the prebuilt std (larger, still within
#      the ceiling's intent) and says so.
#    - debian (the fallback where rustup cannot add the target): Debian's rustc-web with its
#      standard-library source (see shared/TOOLCHAIN.md).
#    REPRO_WEB_TOOLCHAIN=rustup|debian forces a route.
WASM_BUILD_STD=()
RUNNER=$HOME/.cargo/bin/wasm-bindgen-test-runner
rustup_wasm() {
  command -v rustup >/dev/null 2>&1 || return 1
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || timeout 300 rustup target add wasm32-unknown-unknown >/dev/null 2>&1
}
rustup_src() {
  rustup component list --installed 2>/dev/null | grep -q '^rust-src' \
    || timeout 300 rustup component add rust-src >/dev/null 2>&1
}
# The workspace's dependencies need rustc >= 1.89 (uuid); Debian's current rustc-web is 1.96.
MIN_DEBIAN_MINOR=89
debian_rustc_recent() {
  local v
  v=$(/usr/bin/rustc --version 2>/dev/null | awk '{print $2}')
  v=${v#1.}
  v=${v%%.*}
  [ -n "$v" ] && [ "$v" -ge "$MIN_DEBIAN_MINOR" ] 2>/dev/null
}
case "${REPRO_WEB_TOOLCHAIN:-}" in
  rustup) WEB_ROUTE=rustup ;;
  debian) WEB_ROUTE=debian ;;
  "") if rustup_wasm; then WEB_ROUTE=rustup; else WEB_ROUTE=debian; fi ;;
  *) log "REPRO_WEB_TOOLCHAIN must be rustup or debian, not '$REPRO_WEB_TOOLCHAIN'"; return 1 2>/dev/null || exit 1 ;;
esac
if [ "$WEB_ROUTE" = rustup ]; then
  rustup_wasm || { log "rustup cannot add wasm32-unknown-unknown"; return 1 2>/dev/null || exit 1; }
  # RUSTC_BOOTSTRAP for -Zbuild-std and the size flags of scripts/web-build.sh.
  WASM_CARGO_ENV=(env RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$RUNNER")
  if rustup_src; then
    WASM_BUILD_STD=(-Zbuild-std=std,panic_abort)
    log "using rustup's $(rustc --version) for wasm32 with rust-src (-Zbuild-std)"
  else
    log "using rustup's prebuilt wasm32 std: rust-src cannot be had (the wasm is ~15 KB gzip larger)"
  fi
  # A separate target dir per route: the two compilers invalidate each other's cache.
  WEB_TARGET_DIR=$WEB_TARGET_BASE/rustup
else
  apt_install rustc-web libstd-rust-web-dev rust-web-src
  # A fresh machine's package lists can be stale and install an old rustc-web (1.85 in bookworm's
  # main archive, too old for our dependencies); the current one comes with the security updates.
  if ! debian_rustc_recent; then
    log "Debian's $(/usr/bin/rustc --version 2>/dev/null) is older than 1.$MIN_DEBIAN_MINOR: apt-get update and upgrade"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends rustc-web libstd-rust-web-dev rust-web-src >/dev/null
    debian_rustc_recent || { log "Debian's rustc-web is still $(/usr/bin/rustc --version)"; return 1 2>/dev/null || exit 1; }
  fi
  LLD=$(ls "$HOME"/.rustup/toolchains/stable-*/lib/rustlib/*/bin/rust-lld 2>/dev/null | head -n1)
  [ -n "$LLD" ] || LLD=$(command -v rust-lld || command -v lld || true)
  [ -n "$LLD" ] || { log "no rust-lld found"; return 1 2>/dev/null || exit 1; }
  WASM_CARGO_ENV=(env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LLD"
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$RUNNER")
  WASM_BUILD_STD=(-Zbuild-std=std,panic_abort)
  log "using Debian's $(/usr/bin/rustc --version) with -Zbuild-std"
  WEB_TARGET_DIR=$WEB_TARGET_BASE/debian
fi

# 2. wasm-bindgen CLI (for its test runner), exactly the locked version.
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  log "cargo install wasm-bindgen-cli --version $WASM_BINDGEN_VERSION (takes ~5 min)"
  env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
WASM_BINDGEN=$(command -v wasm-bindgen || echo "$HOME/.cargo/bin/wasm-bindgen")

# 3. binaryen's wasm-opt from npm, in a cache dir.
WASM_OPT=$WEB_CACHE/node_modules/.bin/wasm-opt
if [ ! -x "$WASM_OPT" ] || ! "$WASM_OPT" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
  log "npm install binaryen@$BINARYEN_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$WEB_CACHE" "binaryen@$BINARYEN_VERSION" >/dev/null
fi
export WEB_CACHE WEB_TARGET_DIR WASM_RUSTFLAGS WASM_BINDGEN WASM_OPT WEB_ROUTE
