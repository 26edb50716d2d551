"""A task process (``hamster.task_processes``): ``python -m hamster.task_child FD``.

Imports the worker's subscribers module, says it is ready on the socket ``FD``, then runs one attempt per
request, by task name, and answers with its result as JSON. It asks the kernel to kill it when its worker
dies, so no attempt outlives the worker that holds its lease.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import sys
import traceback
from typing import Any

from hamster.context import TaskContext
from hamster.errors import ConfigurationError
from hamster.execution import NonRetryable
from hamster.github_events import EventInfo
from hamster.settings import load_settings
from hamster.subscribers import load_catalog
from hamster.task import Task

MAX_TRACEBACK = 16 * 1024
_PR_SET_PDEATHSIG = 1


def _die_with_worker() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the worker died before prctl took effect
        os._exit(1)


def _context(raw: dict[str, Any]) -> TaskContext:
    from hamster.github import EventObjects, client_for  # github3: only where a task may use it

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
        github=EventObjects(client_for(load_settings()), event),
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

    def send(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message).encode() + b"\n")

    try:
        tasks = load_catalog(load_settings().subscribers).tasks
    except ConfigurationError as exc:
        send({"error": str(exc)})
        return
    send({"ready": True})
    for line in requests:
        request = json.loads(line)
        task = tasks.get(request["task"])
        if task is None:
            reason = f"task {request['task']} is not in {load_settings().subscribers} here"
            send({"raised": ["TaskError", reason, "", False]})
            continue
        send(_run(task, _context(request["ctx"])))


if __name__ == "__main__":
    main()
