"""Run a blocking task function so that its timeout really stops it: one forked child per attempt.

A thread cannot be killed, so a blocking task that overruns its timeout would keep running (and keep its
side effects coming) after the stage was recorded as timed out. Here the function runs in a child forked
for this attempt, in a process group of its own; on timeout (or when the waiting coroutine is cancelled)
the whole group gets SIGKILL, grandchildren included. The child inherits the task and its context through
``fork``, so nothing is pickled on the way in; on the way out the result travels as bytes of JSON (never
pickle, which would let the child run code in the worker), the form outputs take in the run log anyway.

Linux only (``fork``, ``prctl``): the child also asks the kernel to kill it when the worker dies, so a
SIGKILLed worker leaves no orphan attempt running beside the retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

MAX_TRACEBACK = 16 * 1024
MAX_MESSAGE = 64 * 1024 * 1024  # a result: outputs are capped far below this (HAMSTER_MAX_OUTPUT_BYTES)
_PR_SET_PDEATHSIG = 1
_FORK = multiprocessing.get_context("fork")
A = TypeVar("A")


@dataclass(frozen=True)
class Returned:
    """The function returned; ``output`` is its result after a JSON round trip."""

    output: Any


@dataclass(frozen=True)
class Raised:
    """The function raised."""

    error_type: str
    message: str
    traceback: str
    retryable: bool


@dataclass(frozen=True)
class NotJson:
    """The function returned something JSON cannot hold."""

    reason: str


@dataclass(frozen=True)
class Died:
    """The child ended without a result (killed by a signal, ``os._exit``, a crash in C code)."""

    exitcode: int | None


ChildResult = Returned | Raised | NotJson | Died


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _child(
    fn: Callable[[A], object],
    arg: A,
    retryable: Callable[[BaseException], bool],
    conn: Connection,
    parent: int,
) -> None:
    os.setpgrp()  # its own group, so a kill reaches whatever the task started too
    _die_with_parent(parent)
    try:
        result = fn(arg)
        try:
            text = json.dumps(result)
        except (TypeError, ValueError) as exc:
            _send(conn, ["not-json", str(exc)])
        else:
            _send(conn, ["returned", text])
    except BaseException as exc:
        tb = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
        _send(conn, ["raised", type(exc).__name__, str(exc), tb, retryable(exc)])
    finally:
        conn.close()


def _send(conn: Connection, message: list[object]) -> None:
    # Bytes of JSON, never ``Connection.send`` (pickle): what the child sends cannot run code in the worker.
    conn.send_bytes(json.dumps(message).encode())


def _kill_group(process: BaseProcess) -> None:
    if process.pid is not None:  # None only before start()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


async def run_killable(
    fn: Callable[[A], object],
    arg: A,
    timeout: float | None,
    retryable: Callable[[BaseException], bool],
) -> ChildResult:
    """``fn(arg)`` in a forked child; raises ``TimeoutError`` after ``timeout`` s, the child killed."""
    receiver, sender = _FORK.Pipe(duplex=False)
    process = _FORK.Process(target=_child, args=(fn, arg, retryable, sender, os.getpid()), daemon=True)
    process.start()
    # Only the child holds the sending end now: its exit, however it happens, ends the pipe (EOF).
    sender.close()
    receiving = asyncio.ensure_future(asyncio.to_thread(_receive, receiver))
    try:
        message = await asyncio.wait_for(asyncio.shield(receiving), timeout=timeout)
    except BaseException:  # TimeoutError, or the stage agent cancelled on shutdown
        _kill_group(process)
        raise
    finally:
        # The kill ends the pipe, so the receiving thread returns; only then is the pipe closed.
        await asyncio.gather(receiving, return_exceptions=True)
        await asyncio.to_thread(process.join)
        receiver.close()
    if message is None:
        return Died(process.exitcode)
    if message[0] == "returned":
        return Returned(json.loads(message[1]))
    if message[0] == "not-json":
        return NotJson(message[1])
    if message[0] == "raised" and len(message) == 5:
        _, error_type, text, tb, can_retry = message
        return Raised(str(error_type), str(text), str(tb), bool(can_retry))
    return Died(process.exitcode)


def _receive(receiver: Connection) -> tuple[Any, ...] | None:
    try:
        raw = receiver.recv_bytes(MAX_MESSAGE)
    except (EOFError, OSError):
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, list) or not message:
        return None
    return tuple(message)
