"""A throwaway PostgreSQL for the contract tests: Debian's binaries, a free port, a data dir of its own.

``scripts/postgres.sh`` installs the binaries (``make test-deps``). PostgreSQL refuses to run as root, so as
root the server runs as the ``postgres`` user the Debian package creates, in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed: run `make test-deps` (scripts/postgres.sh)"
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """``start()`` → a ``postgresql+psycopg://`` URL; ``stop()`` stops the server and deletes its data."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hamster-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = ["runuser", "-u", "postgres", "--", *args] if self._as_root else list(args)
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def start(self, timeout_s: float = 120.0) -> str:
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o755)
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "hamster", "--auth=trust", "-E", "UTF8")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            _bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "start"
        )
        url = f"postgresql://hamster@127.0.0.1:{self.port}/postgres"
        deadline = time.monotonic() + timeout_s
        while True:  # ready means it answers a query, not that pg_ctl returned
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return f"postgresql+psycopg://hamster@127.0.0.1:{self.port}/postgres"
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def create_database(self, name: str) -> str:
        with psycopg.connect(f"postgresql://hamster@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://hamster@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.data.exists():
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
