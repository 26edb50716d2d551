"""Stopping the local broker's processes: every node gets SIGTERM at once, SIGKILL only after the timeout."""

from __future__ import annotations

import subprocess
import sys

from hamster.broker.process import terminate_all

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
)


def started(*code: str) -> list[subprocess.Popen[bytes]]:
    procs = [subprocess.Popen([sys.executable, "-c", c], stdout=subprocess.PIPE) for c in code]
    for proc in procs:
        assert proc.stdout is not None
        with proc.stdout:
            assert proc.stdout.readline() == b"1\n"  # its signal handlers are in place
    return procs


def test_every_process_ends_on_sigterm():
    """Three processes that end on SIGTERM all end by it; none is killed."""
    procs = started(*["import time; print(1, flush=True); time.sleep(60)"] * 3)
    killed = terminate_all({p.pid: (lambda p=p: p.poll() is None) for p in procs}, timeout_s=20)
    assert killed == []
    assert [p.returncode for p in procs] == [-15, -15, -15]


def test_a_process_ignoring_sigterm_gets_sigkill_after_the_timeout():
    """The one that ignores SIGTERM is killed after the timeout and named; the other, signalled at the
    same time, ended on SIGTERM."""
    polite, stubborn = started("import time; print(1, flush=True); time.sleep(60)", IGNORES_SIGTERM)
    killed = terminate_all(
        {polite.pid: lambda: polite.poll() is None, stubborn.pid: lambda: stubborn.poll() is None},
        timeout_s=1,
    )
    assert killed == [stubborn.pid]
    assert (polite.returncode, stubborn.returncode) == (-15, -9)
