#!/usr/bin/env bash
# Per-call cost of the browser SDK in headless Chromium (issue 15: p99 per call with 1,000
# calls queued, characters written per call). Run by hand, not in CI (timings depend on the
# machine; CI asserts the characters per call in e2e.mjs). Builds the package first unless
# REPRO_WEB_BENCH_NOBUILD=1. Usage: scripts/web-bench.sh [ROUNDS] (default 5).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/web-env.sh"
[ "${REPRO_WEB_BENCH_NOBUILD:-}" = 1 ] || bash "$ROOT/scripts/web-build.sh" >&2
apt_install chromium
PW_VERSION=$(sed -n 's/^PW_VERSION=//p' "$ROOT/scripts/web-test.sh")
PLAYWRIGHT_CORE=$WEB_CACHE/node_modules/playwright-core
if [ "$(node -p "require('$PLAYWRIGHT_CORE/package.json').version" 2>/dev/null)" != "$PW_VERSION" ]; then
  npm install --silent --no-audit --no-fund --prefix "$WEB_CACHE" "playwright-core@$PW_VERSION" >/dev/null
fi
echo "route $WEB_ROUTE; $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$ROOT" rev-parse --short HEAD)"
PLAYWRIGHT_CORE=$PLAYWRIGHT_CORE node "$ROOT/bindings-wasm/tests/bench.mjs" "${1:-5}"
