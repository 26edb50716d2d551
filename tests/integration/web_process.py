"""`hamster web` as a process of its own, for the intake tests that start it with settings of their own."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.system import free_port

HAMSTER = Path(sys.executable).parent / "hamster"
# Straight to 127.0.0.1, whatever proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str) -> int:
    try:
        with DIRECT.open(url, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


@contextmanager
def serving(env: dict[str, str], home: Path, *flags: str, timeout_s: float = 90.0) -> Iterator[int]:
    """The port of a `hamster web` (with ``flags``) run with exactly ``env``, once /readyz answers 200; its
    output goes to ``home``/web.log. Terminated afterwards (killed if it does not end in 30 s)."""
    port = free_port()
    log = home / "web.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(HAMSTER), "web", *flags, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"hamster web exited with {process.returncode}:\n{log.read_text(errors='replace')}"
                )
            try:
                if http_status(f"http://127.0.0.1:{port}/readyz") == 200:
                    break
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                pytest.fail(
                    f"hamster web not ready within {timeout_s:.0f} s:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.25)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def refused_start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`hamster web` run with exactly ``env`` on a free port, where it is expected to stop at once: how it
    ended and what it said."""
    return subprocess.run(
        [str(HAMSTER), "web", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
