#!/usr/bin/env bash
# Runs every cargo-fuzz target (core/fuzz: the journal decoder, the response parser, the
# batch encoder's inverse, the hand JSON readers against serde_json; bulk/fuzz: the CSV validator; idtoken/fuzz: the JWT parser) for SECONDS each (default 600), one
# after another (one core), and prints one line per target: execs, exec/s,
# corpus size, coverage, and whether it crashed. Installs cargo-fuzz if missing.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# The committed seeds in <crate>/fuzz/corpus/<target> are read only; new inputs go to
# <crate>/fuzz/target/work/<target>; crashes to <crate>/fuzz/artifacts/<target>/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-600}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(store_decode response_decide batch_response batch_roundtrip wire_differential csv_validate jwt_parse)
# Which fuzz crate holds a target.
fuzz_dir() {
  for d in bulk idtoken; do
    if [ -f "$root/$d/fuzz/fuzz_targets/$1.rs" ]; then echo "$root/$d/fuzz"; return; fi
  done
  echo "$root/core/fuzz"
}

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz.sh: no nightly toolchain (libFuzzer needs -Zsanitizer); use: cargo test -p repro-line-core --test storage_faults" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

status=0
printf '%-16s %8s %12s %9s %7s %7s %s\n' target seconds execs exec/s corpus cov result
for t in "${targets[@]}"; do
  dir=$(fuzz_dir "$t")
  cd "$dir"
  mkdir -p "target/work/$t" "corpus/$t" target/logs
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
  if [ $rc -eq 0 ]; then result=ok; else result="CRASH (rc=$rc, see $dir/$log, $dir/artifacts/$t)"; status=1; fi
  printf '%-16s %8s %12s %9s %7s %7s %s\n' "$t" "$secs" "$execs" "$rate" "$corpus" "$cov" "$result"
done
exit $status
