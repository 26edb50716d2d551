"""The ``shell`` task: commands run in the run's workspace, in a sandbox, with a timeout that kills them.

The command runs under bubblewrap (``hamster.execution.sandbox``: its own user, PID, mount and network
namespaces; the workspace the only writable place) with an environment built from nothing
(``hamster.execution.task_env``): ``PATH``, ``HOME``, ``LANG``, the run's id and workspace, and what ``env=``
sets, secrets included (``hamster.execution.secrets``). Every secret the worker knows is masked in what it
prints.

Its stdout and stderr go, as they come, to the stage's log in ``<ns>.logs`` (``ctx.log_sink``) and to
``HAMSTER_HOME/logs/runs/<run id>/<stage>.log``; the stage output keeps the last 64 KiB. A non-zero exit
fails the stage; so does the timeout, with ``TaskTimeout``. After the command, the files its
``artifacts=`` globs match are kept (``hamster.execution.artifacts``) and its ``junit=`` reports parsed
(``hamster.execution.test_reports``), also when it failed: that is when they matter most.
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
from typing import Any, BinaryIO

from hamster.errors import ConfigurationError, TaskError, TaskTimeout
from hamster.execution import sandbox
from hamster.execution.artifacts import confined_glob
from hamster.execution.sandbox import Network, Sandboxed, SandboxUnavailable
from hamster.execution.secrets import Secret, resolve_env
from hamster.execution.stage_logs import StageLog, mask, worker_secrets
from hamster.execution.task_env import task_env
from hamster.execution.test_reports import parse_reports, summary_line
from hamster.pipelines.context import TaskContext
from hamster.pipelines.task import Task, task
from hamster.tasks.workspace import stage_log_path, stage_workspace

TAIL_BYTES = 64 * 1024
MESSAGE_TAIL = 2000
KILL_GRACE_S = 5.0


class ShellFailed(TaskError):
    """The command exited with a non-zero status."""


class _Output:
    """The command's output as it comes: to the log file, the stage's log, and a tail kept in memory."""

    def __init__(self, ctx: TaskContext, log_file: BinaryIO, secrets: Sequence[str]) -> None:
        self._ctx, self._file = ctx, log_file
        # The file gets what the stage's log gets: masked, a secret split over two writes included.
        self._masked = StageLog(ctx.run_id, ctx.stage, 0, ctx.attempt, secrets=secrets, max_bytes=2**62)
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._lock = threading.Lock()

    def write(self, stream: str, data: bytes) -> None:
        with self._lock:
            self._masked.write(stream, data.decode(errors="replace"))
            self._flush()
            self._tail.append(data)
            self._tail_size += len(data)
            while self._tail_size - len(self._tail[0]) >= TAIL_BYTES:
                self._tail_size -= len(self._tail.popleft())
        if self._ctx.log_sink is not None:
            self._ctx.log_sink.write(stream, data.decode(errors="replace"))

    def _flush(self, final: bool = False) -> None:
        for chunk in self._masked.take(final=final):
            self._file.write(chunk.text.encode())
        self._file.flush()

    def close(self) -> None:
        """Write what was held back (the start of what might have been a secret)."""
        with self._lock:
            self._flush(final=True)

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
    env: Mapping[str, str | Secret] | None = None,
    artifacts: Sequence[str] = (),
    junit: Sequence[str] = (),
    network: Network = "egress",
) -> dict[str, Any]:
    if ctx.github is None:
        raise ConfigurationError("shell: this worker gives tasks no settings")
    settings = ctx.github.settings
    # What the worker masks (it says so in ctx.masked), and in any case the settings' own secrets.
    known = {*ctx.masked, *ctx.secrets.values(), *worker_secrets(settings)}
    secrets = sorted((s for s in known if s), key=len, reverse=True)
    workspace = stage_workspace(settings.home, ctx.run_id, ctx.outputs)
    workspace.mkdir(parents=True, exist_ok=True)
    log_path = stage_log_path(settings.home, ctx.run_id, ctx.stage)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    shown = command if isinstance(command, str) else " ".join(command)
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    stage_env, absent = resolve_env(env or {}, ctx.secrets)
    facts = {"HAMSTER_RUN_ID": ctx.run_id, "HAMSTER_WORKSPACE": str(workspace)}
    child_env = task_env(os.environ, facts=facts, stage=stage_env)
    sandboxed = settings.sandbox == "on"
    started = time.monotonic()
    with log_path.open("ab") as log:
        out = _Output(ctx, log, secrets)
        where = f"sandbox, network {network}" if sandboxed else "no sandbox: HAMSTER_SANDBOX=off"
        out.write("hamster", f"$ {shown}  (attempt {ctx.attempt}; {where})\n".encode())
        if absent:
            why = "this run is not trusted (a fork's pull request)" if not ctx.trusted else "not granted"
            out.write(
                "hamster",
                f"[hamster] secrets left out of the environment ({why}): {', '.join(absent)}\n".encode(),
            )
        running: Sandboxed | None = None
        try:
            if sandboxed:
                running = sandbox.spawn(argv, env=child_env, workspace=workspace, network=network)
                proc = running.proc
            else:
                proc = subprocess.Popen(
                    argv,
                    cwd=workspace,
                    env=child_env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
        except SandboxUnavailable as exc:
            out.close()
            raise SandboxUnavailable(
                f"{ctx.stage}: {exc}; set HAMSTER_SANDBOX=off to run shell stages unsandboxed"
            ) from None
        try:
            pumps = [out.pump("stdout", proc.stdout), out.pump("stderr", proc.stderr)]
            try:
                code = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out.write("hamster", f"\n[hamster] killed after {timeout_s} s\n".encode())
                out.close()
                raise TaskTimeout(f"{ctx.stage}: {shown!r} ran past its timeout of {timeout_s} s") from None
            except BaseException:
                _kill_group(proc)
                raise
            # What the command wrote last; a background child holding the pipe is not waited for.
            for pump in pumps:
                pump.join(timeout=5)
        finally:
            if running is not None:
                running.close()
        out.close()
    output = mask(out.tail(), secrets)
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
    env: Mapping[str, str | Secret] | None = None,
    retries: int = 0,
    artifacts: Sequence[str] = (),
    junit: Sequence[str] = (),
    network: Network = "egress",
) -> Task:
    """A stage running ``command`` (a string for ``/bin/sh -c``, or an argument list) in the workspace,
    inside the sandbox (``hamster.execution.sandbox``). ``env``: variables to set, a value may be
    ``Secret(NAME)`` (one of the subscriber's secrets); ``network``: ``"none"``, ``"egress"`` (outside hosts,
    not the worker's loopback) or ``"host"``. ``artifacts``: globs (in the workspace) of files to keep;
    ``junit``: globs of JUnit XML reports."""
    if timeout <= 0:
        raise ConfigurationError(f"shell task {name}: timeout must be positive, got {timeout}")
    if network not in sandbox.NETWORKS:
        raise ConfigurationError(
            f"shell task {name}: network must be one of {', '.join(sandbox.NETWORKS)}, got {network!r}"
        )
    frozen_env = dict(env or {})
    for key, value in frozen_env.items():
        if not isinstance(key, str) or not isinstance(value, str | Secret):
            raise ConfigurationError(f"shell task {name}: env {key!r} must be a string or a Secret")
    globs, reports = tuple(artifacts), tuple(junit)

    def run(ctx: TaskContext) -> dict[str, Any]:
        return run_shell(ctx, command, timeout, frozen_env, globs, reports, network)

    run.__qualname__ = run.__name__ = name
    return task(name=name, retries=retries)(run)
