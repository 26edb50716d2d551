"""The ``shell`` task: commands run in the run's workspace, with a timeout that kills the process group.

Its stdout and stderr go, as they come, to the stage's log in ``<ns>.logs`` (``ctx.log_sink``) and to
``HAMSTER_HOME/logs/runs/<run id>/<stage>.log``; the stage output keeps the last 64 KiB. A non-zero exit
fails the stage; so does the timeout, with ``TaskTimeout``. After the command, the files its
``artifacts=`` globs match are kept (``hamster.artifacts``) and its ``junit=`` reports parsed
(``hamster.test_reports``), also when it failed: that is when they matter most.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hamster.artifacts import confined_glob
from hamster.context import TaskContext
from hamster.errors import ConfigurationError, TaskError, TaskTimeout
from hamster.task import Task, task
from hamster.tasks.git import child_env
from hamster.tasks.workspace import redact, stage_log_path, stage_workspace
from hamster.test_reports import parse_reports, summary_line

TAIL_BYTES = 64 * 1024
MESSAGE_TAIL = 2000
KILL_GRACE_S = 5.0


class ShellFailed(TaskError):
    """The command exited with a non-zero status."""


class _Output:
    """The command's output as it comes: to the log file, the stage's log, and a tail kept in memory."""

    def __init__(self, ctx: TaskContext, log_file: Any) -> None:
        self._ctx, self._file = ctx, log_file
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._lock = threading.Lock()

    def write(self, stream: str, data: bytes) -> None:
        with self._lock:
            self._file.write(data)
            self._file.flush()
            self._tail.append(data)
            self._tail_size += len(data)
            while self._tail_size - len(self._tail[0]) >= TAIL_BYTES:
                self._tail_size -= len(self._tail.popleft())
        if self._ctx.log_sink is not None:
            self._ctx.log_sink.write(stream, data.decode(errors="replace"))

    def pump(self, stream: str, pipe: Any) -> threading.Thread:
        def run() -> None:
            with pipe:
                # read1: whatever is there now (up to 64 KiB), so a line reaches the log as it is printed.
                while data := pipe.read1(65536):
                    self.write(stream, data)

        thread = threading.Thread(target=run, name=f"shell-{stream}", daemon=True)
        thread.start()
        return thread

    def tail(self) -> str:
        with self._lock:
            return b"".join(self._tail)[-TAIL_BYTES:].decode(errors="replace")


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
    ctx: TaskContext,
    command: str | Sequence[str],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    artifacts: Sequence[str] = (),
    junit: Sequence[str] = (),
) -> dict[str, Any]:
    if ctx.github is None:
        raise ConfigurationError("shell: this worker gives tasks no settings")
    settings = ctx.github.settings
    token = settings.github_api_token
    secrets = [token.get_secret_value()] if token is not None else []
    workspace = stage_workspace(settings.home, ctx.run_id, ctx.outputs)
    workspace.mkdir(parents=True, exist_ok=True)
    log_path = stage_log_path(settings.home, ctx.run_id, ctx.stage)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    shown = command if isinstance(command, str) else " ".join(command)
    started = time.monotonic()
    with log_path.open("ab") as log:
        out = _Output(ctx, log)
        out.write("hamster", f"$ {shown}  (attempt {ctx.attempt})\n".encode())
        proc = subprocess.Popen(
            command,
            shell=isinstance(command, str),
            cwd=workspace,
            env=child_env({"HAMSTER_RUN_ID": ctx.run_id, "HAMSTER_WORKSPACE": str(workspace), **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        pumps = [out.pump("stdout", proc.stdout), out.pump("stderr", proc.stderr)]
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out.write("hamster", f"\n[hamster] killed after {timeout_s} s\n".encode())
            raise TaskTimeout(f"{ctx.stage}: {shown!r} ran past its timeout of {timeout_s} s") from None
        except BaseException:
            _kill_group(proc)
            raise
        for (
            pump
        ) in pumps:  # what the command wrote last; a background child holding the pipe is not waited for
            pump.join(timeout=5)
    output = redact(out.tail(), secrets)
    kept = _keep_artifacts(ctx, workspace, artifacts)
    tests = _test_report(ctx, workspace, junit)
    if code != 0:
        raise ShellFailed(f"{ctx.stage}: {shown!r} exited with {code}:\n{output[-MESSAGE_TAIL:]}")
    result: dict[str, Any] = {
        "exit_code": code,
        "output": output,
        "log": str(log_path),
        "duration_s": round(time.monotonic() - started, 3),
    }
    if artifacts:
        result["artifacts"] = kept
    if junit:
        result["tests"] = tests
    return result


def _keep_artifacts(ctx: TaskContext, workspace: Path, patterns: Sequence[str]) -> list[str]:
    if not patterns:
        return []
    if ctx.artifacts is None:
        raise ConfigurationError("shell: this worker gives tasks no artifact store")
    files: dict[str, Path] = {}
    for pattern in patterns:
        for path in confined_glob(workspace, pattern):
            # Named by the file's name; two files of one name keep their path in the workspace.
            name = path.name if path.name not in files else str(path.relative_to(workspace.resolve()))
            files.setdefault(name, path)
    for name, path in files.items():
        ctx.artifacts.save(path, name=name)
        ctx.log(f"[hamster] kept artifact {name} ({path.stat().st_size} bytes)", stream="hamster")
    return sorted(files)


def _test_report(ctx: TaskContext, workspace: Path, patterns: Sequence[str]) -> dict[str, Any] | None:
    if not patterns:
        return None
    files = sorted({path for pattern in patterns for path in confined_glob(workspace, pattern)})
    report = parse_reports(files)
    ctx.log(f"[hamster] test report: {summary_line(report)}", stream="hamster")
    if ctx.artifacts is not None:
        # Kept beside the artifacts: a failed stage has no output to carry it, and that is when it matters.
        ctx.artifacts.store.put_report(ctx.run_id, ctx.stage, report)
    return report


def shell(
    command: str | Sequence[str],
    *,
    name: str = "shell",
    timeout: float = 600.0,
    env: Mapping[str, str] | None = None,
    retries: int = 0,
    artifacts: Sequence[str] = (),
    junit: Sequence[str] = (),
) -> Task:
    """A stage running ``command`` (a string for ``/bin/sh -c``, or an argument list) in the workspace.
    ``artifacts``: globs (in the workspace) of files to keep; ``junit``: globs of JUnit XML reports."""
    if timeout <= 0:
        raise ConfigurationError(f"shell task {name}: timeout must be positive, got {timeout}")
    frozen_env = dict(env or {})
    globs, reports = tuple(artifacts), tuple(junit)

    def run(ctx: TaskContext) -> dict[str, Any]:
        return run_shell(ctx, command, timeout, frozen_env, globs, reports)

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=retries)(run)
