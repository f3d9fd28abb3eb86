#!/usr/bin/env bash
# Runs the repro-line benchmarks and prints one table per benchmark (see BENCHMARKS.md).
#   scripts/bench.sh                         # enqueue delivery peers burst cold sizes
#   scripts/bench.sh enqueue delivery        # a subset
#   scripts/bench.sh criterion               # the criterion micro-benchmarks (not in the default set)
#   scripts/bench.sh --runs 5 --peer-runs 3 peers
# Installs what it needs, idempotently: the peers' npm and PyPI packages go to a
# throw-away dir ($REPRO_LINE_BENCH_PEERS, default /tmp/repro-line-bench-peers), never into the repo.
# Results: stdout, and target/bench-out/results-*.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
PEERS_DIR="${REPRO_LINE_BENCH_PEERS:-/tmp/repro-line-bench-peers}"

which=() ; passthru=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs|--peer-runs|--ops|--enqueue-calls|--peer-timeout) passthru+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) which+=("$1"); shift ;;
  esac
done
[ ${#which[@]} -gt 0 ] || which=(enqueue delivery peers burst cold sizes)
wants() { local w; for w in "${which[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1; }

if wants criterion; then
  cargo bench -p repro-line-benches --bench core -- --noplot 2>&1 | grep -E '^[a-z].*time:|^ +time:|^[a-z_/0-9]+$' || true
  rest=(); for w in "${which[@]}"; do [ "$w" = criterion ] || rest+=("$w"); done
  [ ${#rest[@]} -gt 0 ] || exit 0
  which=("${rest[@]}")
fi

features=()
if grep -qs 'pub struct Emulator\b' emulator/src/*.rs; then
  features=(--features emulator)
else
  echo "bench.sh: the emulator library is not there yet; emulator rows fall back to rl-sink" >&2
fi
echo "bench.sh: building release bench binaries" >&2
cargo build --release -p repro-line-benches --bins "${features[@]}" >&2
if wants sizes; then
  cargo build --release -p repro-line >&2 || echo "bench.sh: the CLI does not build now; its size row says so" >&2
fi

# Debian packages the peers need, installed only when missing.
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "bench.sh: apt-get install ${missing[*]}" >&2
  local sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
}

if wants peers; then
  mkdir -p "$PEERS_DIR"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    command -v dpkg >/dev/null 2>&1 && apt_install nodejs npm || true
  fi
  python3 -c 'import ensurepip, venv' 2>/dev/null || { command -v dpkg >/dev/null 2>&1 && apt_install python3-venv || true; }
  if command -v node >/dev/null 2>&1; then
    if [ ! -d "$PEERS_DIR/node_modules/posthog-node" ] || [ ! -d "$PEERS_DIR/node_modules/@segment/analytics-node" ] || [ ! -d "$PEERS_DIR/node_modules/@amplitude/analytics-node" ]; then
      echo "bench.sh: npm install of the Node peers into $PEERS_DIR" >&2
      [ -f "$PEERS_DIR/package.json" ] || printf '{"name":"repro-line-bench-peers","private":true}\n' > "$PEERS_DIR/package.json"
      (cd "$PEERS_DIR" && npm install --no-audit --no-fund --loglevel=error \
        @segment/analytics-node@3.1.0 @amplitude/analytics-node@1.5.73 posthog-node@5.70.0 >&2)
    fi
  else
    echo "bench.sh: node not found; Node peers skipped" >&2
  fi
  if [ ! -x "$PEERS_DIR/venv/bin/python" ] || ! "$PEERS_DIR/venv/bin/python" -c 'import segment.analytics, amplitude, posthog' 2>/dev/null; then
    echo "bench.sh: pip install of the Python peers into $PEERS_DIR/venv" >&2
    python3 -m venv "$PEERS_DIR/venv"
    "$PEERS_DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
      segment-analytics-python==2.4.0 amplitude-analytics==1.3.0 posthog==7.91.1 >&2
  fi
fi

exec python3 scripts/bench-run.py --peers-dir "$PEERS_DIR" "${passthru[@]}" "${which[@]}"
