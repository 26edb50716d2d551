"""Processes that run blocking task functions for a worker: started ahead of time, killed when an attempt
must stop, so stopping is real and starting costs nothing.

A blocking function cannot be stopped in a thread, and forking the worker for each attempt costs tens of
milliseconds on a worker of a few hundred MiB (its page tables are copied). So each worker keeps a few
task processes ready: ``python -m hamster.execution.task_child`` imports the same subscribers module
(``HAMSTER_SUBSCRIBERS``), then runs one attempt at a time, by task name, with the task context sent as
JSON over a socket of its own; the result comes back as JSON (never pickle: nothing a task prints or
returns can run code in the worker). A process whose attempt times out, is cancelled, or loses its lease
is killed with its whole process group, and a fresh one takes its place. A task process dies with its
worker (``PR_SET_PDEATHSIG``).

A task process does not inherit the worker's settings through its environment: it starts with the
worker's environment minus every ``HAMSTER_*`` setting and anything named like a credential
(``hamster.execution.task_env.process_env``), so its ``/proc/<pid>/environ`` holds none of them, and is sent
the settings over its socket first.

The protocol, one JSON object per line each way::

    worker → child   {"settings": {…}}                                    once, first
    child → worker   {"ready": true} | {"error": "…"}                     once, after importing
    worker → child   {"task": NAME, "ctx": {…TaskContext fields…}}
    child → worker   while the attempt runs, any number of
                     {"log": [stream, text]}     what the task printed, logged or ``ctx.log``-ged
                     {"mask": secret}            ``ctx.mask(secret)``: mask it in the stage's log
                     then one of
                     {"returned": <JSON text>} | {"raised": [type, message, traceback, retryable]}
                     | {"not_json": reason}

The log goes to the attempt's ``StageLog`` in the worker, which masks and caps it
(hamster.execution.stage_logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from hamster.errors import HamsterError
from hamster.execution.subprocess_runner import ChildResult, Died, NotJson, Raised, Returned
from hamster.execution.task_env import process_env
from hamster.pipelines.context import LogSink, TaskContext
from hamster.settings import Settings, load_settings, variables

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 120.0
LINE_LIMIT = 64 * 1024 * 1024  # a result line: outputs are capped far below this (HAMSTER_MAX_OUTPUT_BYTES)


class TaskProcessError(HamsterError):
    """A task process could not be started (its subscribers module does not import there, say)."""

    retryable = True


def context_json(ctx: TaskContext) -> dict[str, Any]:
    """The task context as JSON: everything but the GitHub objects, which the task process makes itself."""
    return {
        "event": ctx.event.model_dump(mode="json"),
        "params": ctx.params,
        "outputs": ctx.outputs,
        "run_id": ctx.run_id,
        "attempt": ctx.attempt,
        "subscriber": ctx.subscriber,
        "stage": ctx.stage,
        "extras": ctx.extras,
        "secrets": dict(ctx.secrets),
        "trusted": ctx.trusted,
        "masked": list(ctx.masked),
    }


@dataclass
class _Process:
    proc: asyncio.subprocess.Process
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    attempts: int = field(default=0)

    def kill(self) -> None:
        """Kill the process and everything it started (its session), and close its socket."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: grandchildren too
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.writer.close()


class TaskProcesses:
    """Up to ``size`` task processes kept ready; ``run`` takes one for one attempt."""

    def __init__(self, size: int, settings: Settings | None = None) -> None:
        self.size = size
        self._settings = settings
        self._idle: list[_Process] = []
        self._starting: set[asyncio.Task[None]] = set()
        self._closed = False

    def warm_up(self) -> None:
        """Start processes in the background until ``size`` are ready or starting."""
        while not self._closed and len(self._idle) + len(self._starting) < self.size:
            starting = asyncio.ensure_future(self._start_idle())
            self._starting.add(starting)
            starting.add_done_callback(self._starting.discard)

    async def run(self, task_name: str, ctx: TaskContext, timeout: float | None) -> ChildResult:
        """Run ``task_name`` with ``ctx`` in a task process; ``TimeoutError`` after ``timeout`` seconds.
        What it prints goes to ``ctx.log_sink``. Cancelling the call kills the process."""
        process = self._idle.pop() if self._idle else await self._start()
        request = json.dumps({"task": task_name, "ctx": context_json(ctx)}).encode() + b"\n"
        try:
            process.writer.write(request)
            await process.writer.drain()
            line = await asyncio.wait_for(_answer(process.reader, ctx.log_sink), timeout)
        except BaseException:  # TimeoutError, the attempt cancelled: stop the work for real
            process.kill()
            await process.proc.wait()
            self.warm_up()
            raise
        if not line:  # the process ended (killed by the task itself, a crash in C code, os._exit)
            process.kill()  # its group may hold what the task started
            code = await process.proc.wait()
            self.warm_up()
            return Died(code)
        process.attempts += 1
        self._idle.append(process)
        return _result(json.loads(line))

    async def close(self) -> None:
        self._closed = True
        for starting in list(self._starting):
            starting.cancel()
        await asyncio.gather(*self._starting, return_exceptions=True)
        for process in self._idle:
            process.kill()
            await process.proc.wait()
        self._idle.clear()

    async def _start_idle(self) -> None:
        try:
            self._idle.append(await self._start())
        except TaskProcessError as exc:
            log.error("task process: %s", exc)

    async def _start(self) -> _Process:
        if self._settings is None:
            self._settings = load_settings()
        ours, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hamster.execution.task_child",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env=process_env(os.environ, variables()),
            )
        finally:
            theirs.close()
        try:
            reader, writer = await asyncio.open_connection(sock=ours, limit=LINE_LIMIT)
            writer.write(json.dumps({"settings": self._settings.revealed()}).encode() + b"\n")
            await writer.drain()
            hello = await asyncio.wait_for(reader.readline(), READY_TIMEOUT_S)
            answer = json.loads(hello) if hello else {"error": f"it exited with {await proc.wait()}"}
        except BaseException:  # cancelled (the worker stopping) or timed out: leave nothing running
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            ours.close()
            await asyncio.shield(proc.wait())
            raise
        process = _Process(proc, reader, writer)
        if not answer.get("ready"):
            process.kill()
            await proc.wait()
            raise TaskProcessError(f"a task process could not start: {answer.get('error')}")
        return process


async def _answer(reader: asyncio.StreamReader, sink: LogSink | None) -> bytes:
    """The attempt's result line, passing the log lines before it to ``sink``; b"" if the process ended."""
    while True:
        line = await reader.readline()
        if not line.startswith((b'{"log"', b'{"mask"')):
            return line
        message = json.loads(line)
        if sink is None:
            continue
        if "log" in message:
            stream, text = message["log"]
            sink.write(stream, text)
        else:
            sink.add_secret(message["mask"])


def _result(message: dict[str, Any]) -> ChildResult:
    if "returned" in message:
        return Returned(json.loads(message["returned"]))
    if "not_json" in message:
        return NotJson(message["not_json"])
    error_type, text, tb, retryable = message["raised"]
    return Raised(error_type, text, tb, retryable)
