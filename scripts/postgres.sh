#!/usr/bin/env bash
# Debian's PostgreSQL server binaries for the contract tests. The test session itself starts a throwaway
# server (initdb + pg_ctl) on a free port with its own data dir: see tests/postgres.py. Idempotent.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: the contract tests need PostgreSQL's server binaries: sudo apt-get install postgresql" >&2
    exit 1
fi
echo "installing postgresql (Debian's package) for the contract tests"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
