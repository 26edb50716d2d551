"""Test reports on GitHub's check runs: real broker, real `hamster web` and worker, reporting as a GitHub
App to the strict fake GitHub (which validates annotations as GitHub does, at most 50 per request)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakegithub import FakeGitHub
from tests.integration.system import System, wait_until
from tests.pipelines.logs_catalog import MANY
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

INSTALLATION = 303


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        server.app.install(INSTALLATION, "acme", ["acme/app-junit", "acme/app-many"])
        yield server


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake) -> Iterator[System]:
    home = tmp_path_factory.mktemp("test-reports")
    hamster = System(kafka_bootstrap, home, "tests.pipelines.logs_catalog")
    hamster.env.update(
        {
            "HAMSTER_GITHUB_API_URL": fake.url,
            "HAMSTER_GITHUB_APP_ID": str(fake.app.app_id),
            "HAMSTER_GITHUB_APP_KEY": str(fake.app.write_key(home / "app.pem")),
            "HAMSTER_GITHUB_WRITE_INTERVAL_S": "0.05",
        }
    )
    hamster.env.pop("HAMSTER_GITHUB_API_TOKEN", None)
    with hamster.running({"junit-checks", "junit-many"}):
        yield hamster


def completed_check(system: System, fake: FakeGitHub, repo: str) -> dict:
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    payload["installation"] = {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    status, delivery = system.post("pull_request", payload)
    assert status == 202
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "failed"

    def completed() -> dict | None:
        checks = list(fake.repo(repo).check_runs.values())
        return checks[0] if checks and checks[0].get("status") == "completed" else None

    return dict(wait_until(completed, 60, what=f"the check run of {repo} completed"))


def test_a_junit_report_with_two_failures_is_summarised_and_annotated(system: System, fake: FakeGitHub):
    """The check run of a run whose tests failed carries the counts in its summary and one failure
    annotation per failed test, at its file and line."""
    check = completed_check(system, fake, "acme/app-junit")
    assert check["conclusion"] == "failure"
    summary = check["output"]["summary"]
    assert "**tests**: 4 tests: 1 passed, 2 failed, 0 errors, 1 skipped" in summary
    assert "`tests.test_models.test_name`: KeyError: name" in summary
    notes = fake.repo("acme/app-junit").annotations[check["id"]]
    assert [(n["path"], n["start_line"], n["end_line"], n["annotation_level"]) for n in notes] == [
        ("tests/test_api.py", 12, 12, "failure"),
        ("tests/test_models.py", 7, 7, "failure"),
    ]
    assert notes[0]["title"] == "tests.test_api.test_total" and notes[0]["message"] == "assert 3 == 4"
    assert check["output"]["annotations_count"] == 2


def test_more_failures_than_one_request_takes_go_in_batches(system: System, fake: FakeGitHub):
    """60 failed tests: GitHub takes 50 annotations per request, so they go in two, and all arrive."""
    check = completed_check(system, fake, "acme/app-many")
    notes = wait_until(
        lambda: len(found := fake.repo("acme/app-many").annotations.get(check["id"], [])) == MANY and found,
        30,
        what="all annotations",
    )
    assert [n["start_line"] for n in notes] == list(range(1, MANY + 1))
    writes = [r for r in fake.requests if r.method == "PATCH" and f"/check-runs/{check['id']}" in r.path]
    batches = [
        len(r.body["output"]["annotations"]) for r in writes if "annotations" in r.body.get("output", {})
    ]
    assert batches == [50, MANY - 50]
