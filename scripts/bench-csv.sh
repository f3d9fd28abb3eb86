#!/usr/bin/env bash
# Benchmarks the bulk CSV tools on generated data (nothing large is committed).
#
#   scripts/bench-csv.sh [SIZE_MB=500] [WORKDIR=bench-out]
#   USERS=10000000 FOLLOWERS=8000000 scripts/bench-csv.sh
#
# 1. On one page-cached Format 1 file of SIZE_MB: `repro-line csv validate`
#    (best of 3), the Python csv+re reference doing the same checks
#    (scripts/csv-validate-reference.py, one run) and `wc -l` (best of 3).
# 2. `repro-line reconcile` of USERS users × FOLLOWERS followers (patterns 3
#    and 1): wall time and peak RSS from /usr/bin/time -v.
# 3. `repro-line csv fix --from-encoding cp932` on a CP932 CDP-style export of
#    TRANSCODE_MB (member_id,LINE ID,名前): the transcoding stage's MB/s (from
#    its --json report, best of 3) and the whole command, with and without the
#    column mapping. `TRANSCODE_ONLY=1` runs only this part.
# Prints Markdown tables. Generated files stay in WORKDIR (git-ignored bench-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-500}
WORK=${2:-bench-out}
USERS=${USERS:-10000000}
FOLLOWERS=${FOLLOWERS:-8000000}
TRANSCODE_MB=${TRANSCODE_MB:-500}
mkdir -p "$WORK"

cargo build --release --quiet -p repro-line
BIN=target/release/repro-line
if [ ! -x /usr/bin/time ]; then # peak RSS comes from GNU time
  sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get install -y -q time >/dev/null 2>&1 \
    || { "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q time >/dev/null; } \
    || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
fi

# Runs "$@" and prints its wall time in seconds (output discarded, exit code ignored).
secs() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" > /dev/null 2>&1 || true
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
best_of_3() {
  local best="" t
  for _ in 1 2 3; do
    t=$(secs "$@")
    if [ -z "$best" ] || awk -v x="$t" -v y="$best" 'BEGIN { exit !(x < y) }'; then best=$t; fi
  done
  echo "$best"
}
# A CP932 file of TRANSCODE_MB: $1 = plain (line_user_id,user_id with Japanese
# user IDs: valid once transcoded) or export (member_id,LINE ID,名前).
gen_cp932() {
  python3 - "$1" "$2" "$TRANSCODE_MB" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("gen", "scripts/csv-gen.py")
gen = importlib.util.module_from_spec(spec); spec.loader.exec_module(gen)
kind, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3]) * 1_000_000
names = ["山田 太郎", "佐藤 花子", "鈴木 一郎", "高橋 美咲", "田中 健"]
if kind == "plain":
    head, row = "line_user_id,user_id\r\n", lambda j: "%s,%s%d\r\n" % (gen.line_id(j), names[j % 5], j)
else:
    head, row = "member_id,LINE ID,名前\r\n", lambda j: "m%d,%s,%s\r\n" % (j, gen.line_id(j), names[j % 5])
with open(out, "wb") as f:
    f.write(head.encode("cp932"))
    i, n = 0, 0
    while n < size:
        b = "".join(row(j) for j in range(i, i + 10000)).encode("cp932")
        f.write(b); n += len(b); i += 10000
PY
}

transcode() {
  local plain="$WORK/cp932-${TRANSCODE_MB}mb.csv" export="$WORK/export-cp932-${TRANSCODE_MB}mb.csv"
  [ -f "$plain" ] || { echo "generating $plain" >&2; gen_cp932 plain "$plain"; }
  [ -f "$export" ] || { echo "generating $export" >&2; gen_cp932 export "$export"; }
  local bytes ebytes best="" t json whole mapped
  bytes=$(stat -c %s "$plain")
  ebytes=$(stat -c %s "$export")
  cat "$plain" "$export" > /dev/null
  for _ in 1 2 3; do
    json=$("$BIN" csv fix "$plain" -o "$WORK/transcoded.csv" --from-encoding cp932 --json)
    t=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["conversion"]["mb_per_s"])' "$json")
    if [ -z "$best" ] || awk -v x="$t" -v y="$best" 'BEGIN { exit !(x > y) }'; then best=$t; fi
  done
  whole=$(best_of_3 "$BIN" csv fix "$plain" -o "$WORK/transcoded.csv" --from-encoding cp932)
  mapped=$(best_of_3 "$BIN" csv fix "$export" -o "$WORK/mapped.csv" --from-encoding cp932 \
    --line-user-id-column "LINE ID" --user-id-column member_id)
  rate() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
  echo
  echo "### csv fix --from-encoding cp932: $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB CP932 files, page-cached, $(nproc) cores"
  echo
  echo "| what | time (s) | MB/s of input |"
  echo "| --- | ---: | ---: |"
  echo "| transcoding stage (CP932 → UTF-8, streamed to a temporary file; best of 3) | $(awk -v b="$bytes" -v r="$best" 'BEGIN { printf "%.3f", b / 1e6 / r }') | $(printf '%.0f' "$best") |"
  echo "| whole \`csv fix --from-encoding cp932\` (transcode, validate, write) | $whole | $(rate "$bytes" "$whole") |"
  echo "| export with \`--line-user-id-column \"LINE ID\" --user-id-column member_id\` | $mapped | $(rate "$ebytes" "$mapped") |"
}
if [ "${TRANSCODE_ONLY:-0}" = 1 ]; then
  transcode
  exit 0
fi

FILE="$WORK/valid-${SIZE_MB}mb.csv"
if [ ! -f "$FILE" ]; then
  echo "generating $FILE" >&2
  python3 scripts/csv-gen.py import "$FILE" --size-mb "$SIZE_MB"
fi
BYTES=$(stat -c %s "$FILE")
cat "$FILE" > /dev/null # into the page cache

mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

"$BIN" csv validate "$FILE" > "$WORK/validate.txt" || { cat "$WORK/validate.txt"; echo "generated file is not valid?" >&2; exit 1; }
T_OURS=$(best_of_3 "$BIN" csv validate "$FILE")
RSS_OURS=$( { /usr/bin/time -f "%M" "$BIN" csv validate "$FILE" > /dev/null; } 2>&1 | tail -1)
T_WC=$(best_of_3 wc -l "$FILE")
T_PY=$(secs python3 scripts/csv-validate-reference.py "$FILE")

echo
echo "### csv validate: $(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB Format 1 file, page-cached, $(nproc) cores"
echo
echo "| tool | time (s) | MB/s | relative to repro-line |"
echo "| --- | ---: | ---: | ---: |"
echo "| \`repro-line csv validate\` (all rules, duplicates; peak RSS $((RSS_OURS / 1024)) MiB) | $T_OURS | $(mbps "$T_OURS") | 1.00 |"
echo "| Python \`csv\` + \`re\` reference, same checks | $T_PY | $(mbps "$T_PY") | $(ratio "$T_PY" "$T_OURS")× slower |"
echo "| \`wc -l\` (counts newlines only) | $T_WC | $(mbps "$T_WC") | $(ratio "$T_WC" "$T_OURS")× the time |"

U="$WORK/users-$USERS.csv"
F="$WORK/followers-$FOLLOWERS.csv"
if [ ! -f "$U" ]; then echo "generating $U" >&2; python3 scripts/csv-gen.py users "$U" --rows "$USERS"; fi
# Followers: indices USERS/4 .. USERS/4+FOLLOWERS, shuffled; those past USERS follow but are not users.
if [ ! -f "$F" ]; then echo "generating $F" >&2; python3 scripts/csv-gen.py followers "$F" --rows "$FOLLOWERS" --offset $((USERS / 4)); fi
cat "$U" "$F" > /dev/null

echo
echo "### reconcile: $USERS users × $FOLLOWERS followers"
echo
echo "| command | wall (s) | peak RSS (MiB) | output rows |"
echo "| --- | ---: | ---: | ---: |"
for pattern in 3 1; do
  extra=()
  [ "$pattern" = 1 ] && extra=(--blocked-out "$WORK/blocked.csv")
  /usr/bin/time -v "$BIN" reconcile --users "$U" --followers "$F" --pattern "$pattern" -o "$WORK/deliverable.csv" "${extra[@]}" \
    > "$WORK/reconcile.txt" 2> "$WORK/reconcile.time"
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }' "$WORK/reconcile.time")
  rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$WORK/reconcile.time")
  rows=$(head -1 "$WORK/reconcile.txt" | sed 's/.*→ //; s/ in .*//')
  echo "| \`reconcile --pattern $pattern\` | $wall | $rss | $rows |"
done

transcode
