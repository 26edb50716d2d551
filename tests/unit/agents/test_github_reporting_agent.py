"""The reporting agent over real HTTP to the fake GitHub: records read again post nothing twice."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agents.reporting import report_one
from hamster import Subscriber, task
from hamster.github.client import GitHubClient
from hamster.intake.github_events import EventInfo
from hamster.runs.events import RunRequested, RunSucceeded, StageStarted, StageSucceeded
from hamster.settings import load_settings
from hamster.subscribers.spec import build_catalog
from tests.fakegithub import FakeGitHub

SHA = "d" * 40


@task
def build(ctx):
    return None


def records() -> list:
    event = EventInfo(name="pull_request", delivery_id="d", repo="acme/app", sha=SHA, pr_number=3)
    return [
        RunRequested(
            event_id="e1",
            run_id="run-9",
            seq=1,
            subscriber="ci",
            subscriber_version="v",
            pipeline=("build",),
            event=event,
        ),
        StageStarted(event_id="e2", run_id="run-9", seq=2, stage="build", index=0, attempt=1),
        StageSucceeded(
            event_id="e3", run_id="run-9", seq=3, stage="build", index=0, attempt=1, duration_ms=1
        ),
        RunSucceeded(event_id="e4", run_id="run-9", seq=4),
    ]


@pytest.fixture
def fake():
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def setup(fake, tmp_path):
    fake.app.install(5, "acme", ["acme/app"])  # check runs are written by a GitHub App only
    settings = load_settings(
        github_api_url=fake.url,
        github_app_id=fake.app.app_id,
        github_app_key=fake.app.write_key(tmp_path / "app.pem"),
        github_write_interval_s=0,
        home=tmp_path,
    )
    catalog = build_catalog(
        "t", [Subscriber("ci", events=["pull_request"], pipeline=[build], report=True, checks=True)]
    )
    streams = SimpleNamespace(settings=settings, catalog=catalog, reported={}, subscribers={})
    return streams, GitHubClient(settings)


async def test_processing_the_log_again_posts_nothing_twice(fake, setup):
    """The same records read again (a restart) post no second status and no second check run."""
    streams, github = setup
    for _ in range(2):
        for record in records():
            await report_one(streams, github, record)
    assert [s["state"] for s in fake.statuses("acme/app", SHA)] == ["pending", "success"]
    [check] = fake.repo("acme/app").check_runs.values()
    assert (check["external_id"], check["status"], check["conclusion"]) == ("run-9", "completed", "success")
    assert check["name"] == "hamster/ci"


async def test_crash_before_the_table_write_repeats_only_the_last_status(fake, setup):
    """A crash after GitHub accepted a call but before the table was written repeats that call only."""
    streams, github = setup
    log = records()
    for record in log[:3]:
        await report_one(streams, github, record)
    before_crash = dict(streams.reported)
    await report_one(streams, github, log[3])
    streams.reported = before_crash  # the table write of the last record was lost
    for record in log:
        await report_one(streams, github, record)
    assert [s["state"] for s in fake.statuses("acme/app", SHA)] == ["pending", "success", "success"]
    assert len(fake.repo("acme/app").check_runs) == 1


async def test_lost_start_finds_the_check_run_again(fake, setup):
    """With no record of the check run (crash right after creating it), it is found, not made again."""
    streams, github = setup
    await report_one(streams, github, records()[0])
    streams.reported.clear()
    await report_one(streams, github, records()[0])
    assert len(fake.repo("acme/app").check_runs) == 1
