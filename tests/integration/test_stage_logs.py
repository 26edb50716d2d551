"""Stage logs, artifacts and test reports, end to end: real `hamster web` and `hamster worker` processes on
the real broker, read back through the logs topic, the CLI and the dashboard's HTTP routes."""

from __future__ import annotations

import asyncio
import html
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hamster import ids
from hamster.execution.stage_logs import LogChunk
from hamster.settings import Settings, load_settings
from streams.log_topic import read_run_log
from streams.reader import read_topic
from streams.topics import logs_topic
from tests.integration.system import HAMSTER, READER_TOKEN, REPO_ROOT, System, wait_until
from tests.pipelines.logs_catalog import GIVEN, WORKER_SECRET
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

SUBSCRIBERS = {"ticks", "leaky", "flood", "artifacts", "escape", "junit"}
LOG_MAX_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory) -> Iterator[System]:
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("stage-logs"), "tests.pipelines.logs_catalog")
    hamster.env["HAMSTER_LOG_MAX_BYTES"] = str(LOG_MAX_BYTES)
    hamster.env["HAMSTER_WORKER_SLOTS"] = "3"
    with hamster.running(SUBSCRIBERS):
        yield hamster


def settings_of(system: System) -> Settings:
    return load_settings(
        kafka_bootstrap=system.env["HAMSTER_KAFKA_BOOTSTRAP"],
        namespace=system.namespace,
        partitions=int(system.env["HAMSTER_PARTITIONS"]),
        home=system.home,
    )


def start(system: System, repo: str) -> str:
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), repo)
    )
    assert status == 202
    return delivery


def chunks_now(system: System, run_id: str) -> list[LogChunk]:
    async def read() -> list[LogChunk]:
        return [chunk async for _, chunk in read_run_log(settings_of(system), run_id)]

    return asyncio.run(read())


def text_of(chunks: list[LogChunk], stage: str | None = None) -> str:
    return "".join(c.text for c in chunks if stage is None or c.stage == stage)


def test_a_running_stage_log_is_read_from_the_topic_and_followed_by_the_cli(system: System):
    """A shell stage's lines reach the logs topic and `hamster runs logs --follow` while the stage still
    runs; --follow ends with the run, having printed every line."""
    delivery = start(system, "acme/ticks")
    run_id = ids.run_id(delivery, "ticks")
    wait_until(lambda: system.runs_for(delivery), 60, what="the run in the projection")
    follower = subprocess.Popen(
        [*HAMSTER, "runs", "logs", run_id[:8], "--follow"],
        env=system.env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(iter(follower.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        # From the topic itself: tick 2 is there while the stage has not ended (no `end` chunk yet).
        seen = wait_until(
            lambda: (chunks := chunks_now(system, run_id)) and "tick 2" in text_of(chunks) and chunks,
            60,
            0.3,
            what="tick 2 in the logs topic",
        )
        assert not any(c.end for c in seen), "the stage had already ended: the log was not live"
        assert all(c.stage == "ticks" and c.attempt == 1 for c in seen)
        assert [c.seq for c in seen] == list(range(len(seen)))
        assert {"stdout", "stderr"} <= {c.stream for c in seen}
        # And through the CLI, also before the stage ended.
        wait_until(lambda: any("tick 3" in line for line in printed), 30, 0.1, what="tick 3 from the CLI")
        assert not any(c.end for c in chunks_now(system, run_id) if c.stage == "ticks")
        follower.wait(timeout=90)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        reader.join(timeout=5)
        errors = follower.stderr.read()  # type: ignore[union-attr]
        follower.stdout.close()  # type: ignore[union-attr]
        follower.stderr.close()  # type: ignore[union-attr]
    assert follower.returncode == 0, errors
    out = "".join(printed)
    assert out.startswith("== ticks (attempt 1) ==\n")
    assert "$ for i in" in out
    for i in range(1, 9):
        assert f"\x1b[32mtick {i}\x1b[0m" in out and f"tock {i}" in out
    [run] = system.wait_finished(delivery)
    assert run["status"] == "succeeded"
    final = chunks_now(system, run_id)
    assert final[-1].end and final[-1].stage == "ticks"


def test_secrets_are_masked_before_a_chunk_is_written(system: System):
    """The worker's secrets and a secret the task was given never reach the logs topic, whether printed,
    split over two writes, logged or ctx.log-ged; async tasks' ctx.log and logging reach the log too."""
    delivery = start(system, "acme/leaky")
    run_id = ids.run_id(delivery, "leaky")
    [run] = system.wait_finished(delivery)
    assert run["status"] == "succeeded", run
    text = text_of(chunks_now(system, run_id))
    assert "printed ***" in text
    assert "split *** across writes" in text
    assert "WARNING pipeline: logged *** and ***" in text
    assert "ctx.log says ***" in text
    assert "async ctx.log line" in text
    assert "WARNING pipeline: async logging line with ***" in text
    records = [r.value for r in read_topic(system.kafka, logs_topic(settings_of(system)))]
    assert records
    assert not any(WORKER_SECRET.encode() in value or GIVEN.encode() in value for value in records)


def test_a_stage_log_stops_at_the_cap_with_a_truncation_line(system: System):
    """Past HAMSTER_LOG_MAX_BYTES the log says it was truncated and keeps nothing more; the stage goes on."""
    delivery = start(system, "acme/flood")
    run_id = ids.run_id(delivery, "flood")
    [run] = system.wait_finished(delivery)
    assert run["status"] == "succeeded"
    chunks = chunks_now(system, run_id)
    kept = "".join(c.text for c in chunks if c.stream != "hamster")
    assert len(kept.encode()) <= LOG_MAX_BYTES
    assert "line 0 of a flood" in kept and "line 2999 of a flood" not in kept
    notes = text_of([c for c in chunks if c.stream == "hamster"])
    assert f"[hamster] log truncated: this stage wrote more than {LOG_MAX_BYTES} bytes" in notes
    assert chunks[-1].end


def test_artifacts_are_kept_passed_on_and_downloaded(system: System, tmp_path: Path):
    """A shell stage's glob keeps a file; a later stage gets it with ctx.artifacts.get; the dashboard, the
    CLI and `hamster runs show` list and serve it."""
    delivery = start(system, "acme/artifacts")
    run_id = ids.run_id(delivery, "artifacts")
    [run] = system.wait_finished(delivery)
    assert run["status"] == "succeeded", run
    build, install = run["stages"]
    assert build["output"]["artifacts"] == ["pkg-1.0-py3-none-any.whl"]
    assert install["output"] == {"content": "the wheel\n", "available": ["pkg-1.0-py3-none-any.whl"]}

    got = system.cli(
        "artifacts", "get", run_id[:8], "pkg-1.0-py3-none-any.whl", "-o", str(tmp_path / "w.whl")
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "w.whl").read_text() == "the wheel\n"
    shown = system.cli("runs", "show", run_id)
    assert "pkg-1.0-py3-none-any.whl" in shown.stdout and "installed.txt" in shown.stdout
    missing = system.cli("artifacts", "get", run_id, "nothing.whl")
    assert missing.returncode == 1 and "no artifact named 'nothing.whl'" in missing.stderr

    base = f"http://127.0.0.1:{system.intake_port}"
    with urllib.request.urlopen(
        urllib.request.Request(
            f"{base}/runs/{run_id}/artifacts/pkg-1.0-py3-none-any.whl",
            headers={"Authorization": f"Bearer {READER_TOKEN}"},
        ),
        timeout=10,
    ) as answer:
        assert answer.read() == b"the wheel\n"
        assert "attachment" in answer.headers["Content-Disposition"]
    page = fetch(f"{base}/runs/{run_id}")
    assert f'href="/runs/{run_id}/artifacts/pkg-1.0-py3-none-any.whl?stage=build"' in page


def test_an_artifact_glob_leading_out_of_the_workspace_is_refused(system: System):
    """A symlink to /etc matched by a stage's artifacts glob fails the stage, without retries."""
    delivery = start(system, "acme/escape")
    [run] = system.wait_finished(delivery)
    assert run["status"] == "failed"
    [stage] = run["stages"]
    assert stage["error"]["type"] == "ArtifactRefused"
    assert "leads outside the workspace" in stage["error"]["message"]
    assert stage["attempt"] == 1
    assert system.cli("artifacts", "list", run["run_id"]).stdout == ""


def test_a_junit_report_with_two_failures_is_on_the_run_page(system: System):
    """The JUnit file of a failed shell stage is parsed; the run page and `runs show` show its counts and
    both failures at their file and line."""
    delivery = start(system, "acme/junit")
    [run] = system.wait_finished(delivery)
    assert run["status"] == "failed"
    page = fetch(f"http://127.0.0.1:{system.intake_port}/runs/{run['run_id']}")
    assert 'data-failures="2"' in page
    assert "4 tests: <strong>1 passed</strong>" in page
    assert "<code>tests/test_api.py:12</code>" in page
    assert "<code>tests/test_models.py:7</code>" in page
    assert html.escape("KeyError: name") in page
    shown = system.cli("runs", "show", run["run_id"]).stdout
    assert "4 tests: 1 passed, 2 failed, 0 errors, 1 skipped" in shown


def test_the_raw_log_and_the_event_stream_of_a_finished_run(system: System):
    """A finished run's log reads back from the topic: as raw text, and as Server-Sent Events ending with
    `end`, its ANSI colours turned into HTML."""
    delivery = start(system, "acme/ticks")
    [run] = system.wait_finished(delivery, timeout=90)
    base = f"http://127.0.0.1:{system.intake_port}/runs/{run['run_id']}"
    raw = fetch(f"{base}/log.txt")
    assert raw.startswith("== ticks (attempt 1) ==\n") and "tick 8" in raw
    events = fetch(f"{base}/log")
    assert events.rstrip().endswith("event: end\ndata: {}")
    assert '<span style=\\"color: #00aa00\\">tick 1</span>' in events  # JSON-escaped quotes


def fetch(url: str) -> Any:
    """GET a dashboard URL signed in as the System's reader."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {READER_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read().decode()
