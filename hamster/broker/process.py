"""The broker's process seen from outside: its pid file, whether it is alive, how to end it. POSIX only.

The broker outlives the command that started it, so a later command knows it only by the pid file. A pid
alone is not proof: the broker may have died and left a zombie (when nobody reaps it) or its pid may have
been reused, so on Linux ``/proc`` is consulted too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def write_pid(path: Path, pid: int) -> None:
    """Write the pid file atomically, so a concurrent reader never sees it half written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{pid}\n")
    os.replace(partial, path)


def is_alive(pid: int, marker: str) -> bool:
    """True if ``pid`` runs, is no zombie, and (where ``/proc`` tells) has ``marker`` in its command line."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    if not Path("/proc/self").is_dir():
        return True  # no /proc (macOS): the signal check is all there is
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        command = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False  # it ended just now
    # Field 3 of /proc/<pid>/stat is the state; the command name before it may hold spaces and parentheses.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X") and marker.encode() in command


def terminate_all(processes: Mapping[int, Callable[[], bool]], timeout_s: float) -> list[int]:
    """SIGTERM to every process (pid → is it alive), then wait up to ``timeout_s``; SIGKILL only after that.
    Return the pids that got SIGKILL.

    Kafka shuts down cleanly on SIGTERM (it flushes logs and writes its clean-shutdown marker), which spares
    the next start a log recovery. All get SIGTERM before any is waited for: the nodes of a cluster stop
    together, rather than the last ones waiting for a controller quorum the first ones took away.
    """
    for pid in processes:
        _send(pid, signal.SIGTERM)
    _wait(lambda: any(alive() for alive in processes.values()), timeout_s)
    killed = [pid for pid, alive in processes.items() if alive()]
    for pid in killed:
        _send(pid, signal.SIGKILL)
    _wait(lambda: any(processes[pid]() for pid in killed), 10.0)
    return killed


def _send(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signum)


def _wait(alive: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two starts (or a start and a stop) do not interleave."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
