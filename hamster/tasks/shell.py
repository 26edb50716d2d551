"""The ``shell`` task: commands run in the run's workspace, with a timeout that kills the process group.

The whole output goes to ``HAMSTER_HOME/logs/runs/<run id>/<stage>.log``; the stage output keeps its last
64 KiB. A non-zero exit fails the stage; so does the timeout, with ``TaskTimeout``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hamster.context import TaskContext
from hamster.errors import ConfigurationError, TaskError, TaskTimeout
from hamster.task import Task, task
from hamster.tasks.git import child_env
from hamster.tasks.workspace import redact, stage_log_path, workspace_path

TAIL_BYTES = 64 * 1024
MESSAGE_TAIL = 2000
KILL_GRACE_S = 5.0


class ShellFailed(TaskError):
    """The command exited with a non-zero status."""


def tail(path: Path, size: int = TAIL_BYTES) -> str:
    with path.open("rb") as log:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - size))
        return log.read().decode(errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The command runs in a session of its own (start_new_session), so its pid is its process group:
    # TERM, a grace period, then KILL reach every child it started, not only the shell.
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def run_shell(
    ctx: TaskContext, command: str | Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    if ctx.github is None:
        raise ConfigurationError("shell: this worker gives tasks no settings")
    settings = ctx.github.settings
    token = settings.github_api_token
    secrets = [token.get_secret_value()] if token is not None else []
    workspace = Path(str((ctx.outputs.get("checkout") or {}).get("workspace") or ""))
    if not str(workspace) or str(workspace) == ".":
        workspace = workspace_path(settings.home, ctx.run_id)
    workspace.mkdir(parents=True, exist_ok=True)
    log_path = stage_log_path(settings.home, ctx.run_id, ctx.stage)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    shown = command if isinstance(command, str) else " ".join(command)
    started = time.monotonic()
    with log_path.open("ab") as log:
        log.write(f"$ {shown}  (attempt {ctx.attempt})\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command,
            shell=isinstance(command, str),
            cwd=workspace,
            env=child_env({"HAMSTER_RUN_ID": ctx.run_id, "HAMSTER_WORKSPACE": str(workspace), **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            log.write(f"\n[hamster] killed after {timeout_s} s\n".encode())
            raise TaskTimeout(f"{ctx.stage}: {shown!r} ran past its timeout of {timeout_s} s") from None
        except BaseException:
            _kill_group(proc)
            raise
    output = redact(tail(log_path), secrets)
    if code != 0:
        raise ShellFailed(f"{ctx.stage}: {shown!r} exited with {code}:\n{output[-MESSAGE_TAIL:]}")
    return {
        "exit_code": code,
        "output": output,
        "log": str(log_path),
        "duration_s": round(time.monotonic() - started, 3),
    }


def shell(
    command: str | Sequence[str],
    *,
    name: str = "shell",
    timeout: float = 600.0,
    env: Mapping[str, str] | None = None,
    retries: int = 0,
) -> Task:
    """A stage running ``command`` (a string for ``/bin/sh -c``, or an argument list) in the workspace."""
    if timeout <= 0:
        raise ConfigurationError(f"shell task {name}: timeout must be positive, got {timeout}")
    frozen_env = dict(env or {})

    def run(ctx: TaskContext) -> dict[str, Any]:
        return run_shell(ctx, command, timeout, frozen_env)

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=retries)(run)
