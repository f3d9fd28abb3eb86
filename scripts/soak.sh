#!/usr/bin/env bash
# Reliability soak (see RELIABILITY.md):
#   1. crash + fault soak: `repro-line register` SIGKILLed REPRO_LINE_SOAK_KILLS times while the
#      emulator injects 503/429/resets/500s, over REPRO_LINE_SOAK_ROWS rows (cli/tests/register_crash.rs);
#   2. storage faults: torn tails, byte flips, read-only and full filesystems (core/tests/storage_faults.rs);
#   3. two processes racing for one state dir: one wins, the other gets StateDirInUse (exit 2),
#      nothing lost or doubled; plus ten concurrent `send`s on one dir (cli/tests/state_dir.rs).
#   scripts/soak.sh [crash] [storage] [lock]        (default: all three)
# Env: REPRO_LINE_SOAK_ROWS (20000), REPRO_LINE_SOAK_KILLS (10), REPRO_LINE_SOAK_SEED (test default).
# Logs: target/soak-out/<stamp>-<part>.log; a summary line per part on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export REPRO_LINE_SOAK_ROWS="${REPRO_LINE_SOAK_ROWS:-20000}"
export REPRO_LINE_SOAK_KILLS="${REPRO_LINE_SOAK_KILLS:-10}"
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(crash storage lock)
out=target/soak-out; mkdir -p "$out"
stamp=$(date -u +%Y%m%d-%H%M%S)
status=0

summary() { # name log rc seconds
  local counts
  counts=$(grep -E '^test result:' "$2" | tail -1 || true)
  printf '%-8s rc=%s %5ss  %s\n' "$1" "$3" "$4" "${counts:-no test result line (see $2)}"
  grep -oE '(soak: |64 KiB|full disk|SKIPPED).*' "$2" | sed 's/^/         /' || true
}

for part in "${parts[@]}"; do
  log="$out/$stamp-$part.log"
  start=$(date +%s)
  set +e
  case "$part" in
    crash)
      echo "soak: register_crash with rows=$REPRO_LINE_SOAK_ROWS kills=$REPRO_LINE_SOAK_KILLS (release)" | tee "$log"
      cargo test -p repro-line --release --test register_crash -- --nocapture --test-threads=1 >>"$log" 2>&1 ;;
    storage)
      cargo test -p repro-line-core --release --test storage_faults -- --nocapture >"$log" 2>&1 ;;
    lock)
      cargo test -p repro-line --release --test state_dir -- --nocapture >"$log" 2>&1 ;;
    *) echo "unknown part $part (crash|storage|lock)" >&2; exit 2 ;;
  esac
  rc=$?
  set -e
  [ $rc -eq 0 ] || status=1
  summary "$part" "$log" "$rc" "$(( $(date +%s) - start ))"
done
exit $status
