"""A task process (``hamster.execution.task_processes``): ``python -m hamster.execution.task_child FD``.

Reads the worker's settings from the socket (its environment holds none of them), imports the worker's
subscribers module, says it is ready on the socket ``FD``, then runs one attempt per
request, by task name, and answers with its result as JSON. It asks the kernel to kill it when its worker
dies, so no attempt outlives the worker that holds its lease.

While an attempt runs, what it prints (``sys.stdout``, ``sys.stderr``), logs (the root logger) and
``ctx.log``-s goes back over the socket as ``{"log": [stream, text]}`` lines, to the stage's log.
Programs the task starts itself write to this process's own output unless it pipes them (``shell`` does).
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from hamster.errors import ConfigurationError
from hamster.execution.artifacts import for_stage
from hamster.execution.outcome import NonRetryable
from hamster.execution.stage_logs import LOG_FORMAT
from hamster.intake.github_events import EventInfo
from hamster.pipelines.context import TaskContext
from hamster.pipelines.task import Task
from hamster.settings import Settings, load_settings
from hamster.subscribers.spec import load_catalog

MAX_TRACEBACK = 16 * 1024
_PR_SET_PDEATHSIG = 1


def _die_with_worker() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the worker died before prctl took effect
        os._exit(1)


class ChannelLog:
    """``ctx.log_sink`` in a task process: log lines and secrets to mask go back to the worker."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send

    def write(self, stream: Any, text: str) -> None:
        if text:
            self._send({"log": [str(stream), text]})

    def add_secret(self, secret: str) -> None:
        self._send({"mask": secret})


class _Printed(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` during an attempt: each write goes to the stage's log."""

    def __init__(self, sink: ChannelLog, stream: str) -> None:
        self._sink, self._stream = sink, stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._sink.write(self._stream, text)
        return len(text)


class _Logged(logging.Handler):
    def __init__(self, sink: ChannelLog) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self._sink.write("log", self.format(record) + "\n")


@contextlib.contextmanager
def _captured(sink: ChannelLog) -> Iterator[None]:
    """Print and log into the stage's log while the attempt runs."""
    handler = _Logged(sink)
    root = logging.getLogger()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Printed(sink, "stdout"), _Printed(sink, "stderr")
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        sys.stdout, sys.stderr = saved


def _context(raw: dict[str, Any], sink: ChannelLog, settings: Settings) -> TaskContext:
    # github3: only where a task may use it
    from hamster.github.client import client_for
    from hamster.github.objects import EventObjects

    event = EventInfo.model_validate(raw["event"])
    return TaskContext(
        event=event,
        params=raw["params"],
        outputs=raw["outputs"],
        run_id=raw["run_id"],
        attempt=raw["attempt"],
        subscriber=raw["subscriber"],
        stage=raw["stage"],
        extras=raw.get("extras", {}),
        github=EventObjects(client_for(settings), event),
        log_sink=sink,
        artifacts=for_stage(settings, raw["run_id"], raw["stage"], raw["outputs"]),
        secrets=dict(raw.get("secrets") or {}),
        trusted=bool(raw.get("trusted", True)),
        masked=tuple(raw.get("masked") or ()),
    )


def _run(task: Task, ctx: TaskContext) -> dict[str, Any]:
    try:
        result = task.fn(ctx)
    except BaseException as exc:
        tb = "".join(traceback.format_exception(exc))[-MAX_TRACEBACK:]
        return {"raised": [type(exc).__name__, str(exc), tb, not isinstance(exc, NonRetryable)]}
    try:
        return {"returned": json.dumps(result)}
    except (TypeError, ValueError) as exc:
        return {"not_json": str(exc)}


def main() -> None:
    _die_with_worker()
    channel = socket.socket(fileno=int(sys.argv[1]))
    requests, answers = channel.makefile("rb"), channel.makefile("wb", buffering=0)
    sending = threading.Lock()  # a shell stage's output arrives from its reader threads

    def send(message: dict[str, Any]) -> None:
        line = json.dumps(message).encode() + b"\n"
        with sending:
            _write_all(answers, line)

    try:
        # The settings come over the socket, not through this process's environment (it has none of them).
        first = requests.readline()
        settings = load_settings(**json.loads(first)["settings"]) if first else load_settings()
        tasks = load_catalog(settings.subscribers).tasks
    except ConfigurationError as exc:
        send({"error": str(exc)})
        return
    logging.getLogger().setLevel(settings.log_level)  # a task's own INFO lines reach its log
    send({"ready": True})
    for line in requests:
        request = json.loads(line)
        task = tasks.get(request["task"])
        if task is None:
            reason = f"task {request['task']} is not in {settings.subscribers} here"
            send({"raised": ["TaskError", reason, "", False]})
            continue
        sink = ChannelLog(send)
        ctx = _context(request["ctx"], sink, settings)
        with _captured(sink):
            result = _run(task, ctx)
        send(result)


def _write_all(answers: io.RawIOBase, line: bytes) -> None:
    # An unbuffered socket file may write only part of a long line.
    view = memoryview(line)
    while view:
        written = answers.write(view)
        view = view[written or 0 :]


if __name__ == "__main__":
    main()
