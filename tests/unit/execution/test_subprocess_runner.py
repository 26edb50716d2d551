"""The killable runner: a blocking task in a forked child, stopped for real on timeout."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from hamster.execution.subprocess_runner import Died, NotJson, Raised, Returned, run_killable
from tests.integration.system import wait_until


def never_retry(exc: BaseException) -> bool:
    return False


def always_retry(exc: BaseException) -> bool:
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of ours stays a zombie until reaped; a zombie runs nothing.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


async def test_output_comes_back_as_json():
    """The child's return value comes back after a JSON round trip (tuples become lists)."""
    result = await run_killable(lambda n: {"n": n, "t": (1, 2), "big": "x" * 1_000_000}, 3, 30, always_retry)
    assert isinstance(result, Returned)
    assert result.output["n"] == 3 and result.output["t"] == [1, 2] and len(result.output["big"]) == 1_000_000


async def test_exception_comes_back_with_traceback_and_retryability():
    """An exception in the child comes back with type, message, traceback and the predicate's retryability."""

    def explode(_: object) -> None:
        raise KeyError("gone")

    result = await run_killable(explode, None, 30, never_retry)
    assert isinstance(result, Raised)
    assert (result.error_type, result.message, result.retryable) == ("KeyError", "'gone'", False)
    assert "explode" in result.traceback


async def test_unserialisable_output_is_reported():
    """A result JSON cannot hold is reported as such, not as a crash."""
    assert isinstance(await run_killable(lambda _: {1, 2}, None, 30, always_retry), NotJson)


async def test_child_that_dies_is_reported():
    """A child that exits without a result is reported with its exit code."""
    assert await run_killable(lambda _: os._exit(7), None, 30, always_retry) == Died(7)


async def test_timeout_kills_the_child_and_what_it_started(tmp_path):
    """On timeout the child and its own child process are killed, not left running."""
    pids = tmp_path / "pids"

    def hang(_: object) -> None:
        sleeper = subprocess.Popen(["sleep", "300"])
        pids.write_text(f"{os.getpid()} {sleeper.pid}")
        time.sleep(300)

    with pytest.raises(TimeoutError):
        await run_killable(hang, None, 5.0, always_retry)
    child, grandchild = map(int, wait_until(lambda: pids.exists() and pids.read_text(), 30).split())
    wait_until(lambda: not pid_alive(child) and not pid_alive(grandchild), 30, what="both killed")


def test_a_pickle_from_the_child_is_never_unpickled(tmp_path):
    """The worker reads the child's answer as JSON only: a pickle whose loading would run code (here:
    create a file) is not loaded, and counts as no answer."""
    import multiprocessing
    import pickle

    from hamster.execution.subprocess_runner import _receive

    planted = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (open, (str(planted), "w"))

    receiver, sender = multiprocessing.Pipe(duplex=False)
    sender.send_bytes(pickle.dumps(("returned", Exploit())))
    assert _receive(receiver) is None
    assert not planted.exists()
    sender.send_bytes(b'["returned", "{\\"ok\\": 1}"]')
    assert _receive(receiver) == ("returned", '{"ok": 1}')
