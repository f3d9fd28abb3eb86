#!/usr/bin/env bash
# Runs every cargo-fuzz target of core/fuzz for SECONDS each (default 600), one
# after another (one core), and prints one line per target: execs, exec/s,
# corpus size, coverage, and whether it crashed. Installs cargo-fuzz if missing.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# The committed seeds in core/fuzz/corpus/<target> are read only; new inputs go to
# core/fuzz/target/work/<target>; crashes to core/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../core/fuzz"
secs="${1:-600}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(store_decode response_decide batch_response batch_roundtrip)

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: no nightly toolchain (libFuzzer needs -Zsanitizer); use: cargo test -p repro-line-core --test storage_faults" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo +nightly fuzz build -O "${targets[@]/#/}" >/dev/null 2>&1 || cargo +nightly fuzz build -O

mkdir -p target/logs
status=0
printf '%-16s %8s %12s %9s %7s %7s %s\n' target seconds execs exec/s corpus cov result
for t in "${targets[@]}"; do
  mkdir -p "target/work/$t" "corpus/$t"
  log="target/logs/$t.log"
  set +e
  cargo +nightly fuzz run -O "$t" "target/work/$t" "corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  corpus=$(ls "target/work/$t" | wc -l)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
  if [ $rc -eq 0 ]; then result=ok; else result="CRASH (rc=$rc, see core/fuzz/$log, core/fuzz/artifacts/$t)"; status=1; fi
  printf '%-16s %8s %12s %9s %7s %7s %s\n' "$t" "$secs" "$execs" "$rate" "$corpus" "$cov" "$result"
done
exit $status
