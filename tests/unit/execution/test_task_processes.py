"""Task processes: blocking tasks run in processes kept ready, answer in JSON, and are killed to stop."""

from __future__ import annotations

import asyncio
import os

import pytest

from hamster.execution.subprocess_runner import Died, Raised, Returned
from hamster.execution.task_processes import TaskProcessError, TaskProcesses
from hamster.intake.github_events import EventInfo
from hamster.pipelines.context import TaskContext
from tests.integration.fault_tools import running


def context(attempt: int = 1, run_id: str = "run-1") -> TaskContext:
    return TaskContext(
        event=EventInfo(name="push", delivery_id="d", repo="acme/app"),
        params={},
        outputs={"first": {"n": 1}},
        run_id=run_id,
        attempt=attempt,
        subscriber="s",
        stage="quick",
    )


@pytest.fixture
async def processes(monkeypatch, tmp_path):
    monkeypatch.setenv("HAMSTER_SUBSCRIBERS", "tests.pipelines.faults")
    monkeypatch.setenv("HAMSTER_TEST_MARKS", str(tmp_path / "marks.txt"))
    pool = TaskProcesses(1)
    yield pool
    await pool.close()


async def test_a_task_runs_in_a_ready_process_and_answers_in_json(processes):
    """The task sees the context it was sent; its output comes back as JSON; the process is reused."""
    first = await processes.run("quick", context(), None)
    assert first == Returned({"repo": "acme/app"})
    pid = processes._idle[0].proc.pid
    assert await processes.run("follow", context(), None) == Returned({"after": {"first": {"n": 1}}})
    assert processes._idle[0].proc.pid == pid


async def test_an_error_comes_back_with_its_type_and_whether_to_retry(processes):
    """A raised exception is reported with its traceback; NonRetryable says not to retry."""
    flaky = await processes.run("flaky", context(attempt=1), None)
    assert isinstance(flaky, Raised) and flaky.error_type == "RuntimeError" and flaky.retryable
    refused = await processes.run("refuses", context(), None)
    assert isinstance(refused, Raised) and refused.error_type == "NonRetryable" and not refused.retryable
    unknown = await processes.run("no-such-task", context(), None)
    assert isinstance(unknown, Raised) and not unknown.retryable


async def test_a_timeout_kills_the_process_and_what_it_started(processes, tmp_path):
    """Past its timeout the task's process is killed with the process the task started; a fresh one
    takes its place."""
    with pytest.raises(TimeoutError):
        await processes.run("hang", context(), 1.0)
    notes = (tmp_path / "marks.txt.holders").read_text().split()
    task_pid, sleeper_pid = int(notes[4]), int(notes[5])
    for _ in range(100):
        if not running(task_pid) and not running(sleeper_pid):
            break
        await asyncio.sleep(0.05)
    assert not running(task_pid) and not running(sleeper_pid)
    assert await processes.run("quick", context(), None) == Returned({"repo": "acme/app"})


async def test_cancelling_an_attempt_kills_its_process(processes, tmp_path):
    """A cancelled attempt (the run ended, the lease was lost) stops for real."""
    attempt = asyncio.ensure_future(processes.run("hold", context(), None))
    holders = tmp_path / "marks.txt.holders"
    for _ in range(200):
        if holders.exists():
            break
        await asyncio.sleep(0.05)
    task_pid = int(holders.read_text().split()[4])
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    for _ in range(100):
        if not running(task_pid):
            break
        await asyncio.sleep(0.05)
    assert not running(task_pid)


async def test_a_process_that_dies_is_reported_and_replaced(processes):
    """A task that ends its own process is reported as Died, and the next attempt gets a new process."""
    died = await processes.run("exits", context(), None)
    assert isinstance(died, Died)
    assert await processes.run("quick", context(), None) == Returned({"repo": "acme/app"})


async def test_a_subscribers_module_that_does_not_import_is_a_clear_error(monkeypatch):
    """A task process that cannot import the subscribers module says why."""
    monkeypatch.setenv("HAMSTER_SUBSCRIBERS", "tests.pipelines.no_such_module")
    pool = TaskProcesses(1)
    with pytest.raises(TaskProcessError, match="no_such_module"):
        await pool.run("quick", context(), None)
    await pool.close()
    assert os.environ["HAMSTER_SUBSCRIBERS"].endswith("no_such_module")


class Collected:
    """A log sink that records what a task process sent."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str]] = []
        self.secrets: list[str] = []

    def write(self, stream: str, text: str) -> None:
        self.writes.append((stream, text))

    def add_secret(self, secret: str) -> None:
        self.secrets.append(secret)


async def test_what_a_task_prints_and_logs_comes_back_before_its_result(monkeypatch, tmp_path):
    """print, sys.stdout/stderr writes, logging and ctx.log travel over the socket as log lines, and
    ctx.mask as a secret to mask; the result follows."""
    from dataclasses import replace

    from tests.pipelines.logs_catalog import GIVEN

    monkeypatch.setenv("HAMSTER_SUBSCRIBERS", "tests.pipelines.logs_catalog")
    monkeypatch.setenv("HAMSTER_HOME", str(tmp_path))
    pool = TaskProcesses(1)
    try:
        sink = Collected()
        result = await pool.run("leaky", replace(context(), stage="leaky", log_sink=sink), 60)
    finally:
        await pool.close()
    assert result == Returned({"ok": True})
    assert sink.secrets == [GIVEN]
    streams = {stream for stream, _ in sink.writes}
    assert streams == {"stdout", "log"}
    text = "".join(text for _, text in sink.writes)
    assert "printed test-webhook-secret-7f3a9c2e\n" in text  # masked by the worker's StageLog, not here
    assert f"WARNING pipeline: logged test-webhook-secret-7f3a9c2e and {GIVEN}\n" in text
    assert f"ctx.log says {GIVEN}\n" in text
