#!/usr/bin/env bash
# Debian's redis-server for the benchmark's Celery baseline. The benchmark starts its own throwaway server
# on a free port (bench/e2e.py) and stops it; nothing runs as a service. Idempotent.
set -euo pipefail
# The history and scale sections rebuild the projection into PostgreSQL (a throwaway server, tests/postgres.py).
bash "$(dirname "$0")/../scripts/postgres.sh"
if command -v redis-server >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: the Celery baseline needs redis-server: sudo apt-get install redis-server" >&2
    exit 1
fi
echo "installing redis-server (Debian's package) for the Celery baseline"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server
# The package's own service is not what the benchmark uses; don't leave it running where systemd started it.
if command -v systemctl >/dev/null && systemctl is-active --quiet redis-server 2>/dev/null; then
    systemctl stop redis-server || true
fi
