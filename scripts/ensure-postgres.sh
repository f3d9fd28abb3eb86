#!/usr/bin/env bash
# The gateway's PostgreSQL tests run against a real server from Debian's packages, on
# 127.0.0.1 only (like scripts/ensure-moto.sh for S3). Idempotent: a server this script
# started before is reused while it answers. Prints the URL on stdout (and writes it to
# $dir/url); scripts/test.sh exports it as REPRO_LINE_TEST_PG_URL.
set -euo pipefail
dir=${REPRO_LINE_PG_DIR:-${TMPDIR:-/tmp}/repro-line-pg-$(id -u)}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi
  done
  command -v "$1" || true
}

if [ -z "$(pg_bin initdb)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y postgresql >&2 || { apt-get update >&2 && apt-get install -y postgresql >&2; }
fi
initdb=$(pg_bin initdb)
pg_ctl=$(pg_bin pg_ctl)
pg_isready=$(pg_bin pg_isready)
[ -n "$initdb" ] && [ -n "$pg_ctl" ] || { echo "initdb/pg_ctl not found after installing postgresql" >&2; exit 1; }

if [ -f "$dir/url" ] && [ -f "$dir/port" ] && "$pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")"; then
  cat "$dir/url"
  exit 0
fi

# PostgreSQL refuses to run as root: as root, run it as an unprivileged user owning the dir.
as_user() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  user=postgres
  id -u "$user" >/dev/null 2>&1 || user=nobody
  as_user() { runuser -u "$user" -- "$@"; }
fi

if [ -d "$dir/data" ]; then as_user "$pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; fi
rm -rf "$dir"
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown "$user" "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_user "$initdb" -D "$dir/data" -U repro --auth=trust -E UTF8 --no-locale >/dev/null
# Loopback only; the socket lives in the dir too (no /var/run/postgresql needed).
as_user "$pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
  -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null
url="postgres://repro@127.0.0.1:$port/postgres"
echo "$port" >"$dir/port"
echo "$url" >"$dir/url"
echo "$url"
