#!/usr/bin/env bash
# The S3 upload tests run against a local moto_server (S3-compatible, loopback only).
set -euo pipefail
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
fi
command -v moto_server >/dev/null 2>&1 || { echo "moto_server not on PATH after install" >&2; exit 1; }
