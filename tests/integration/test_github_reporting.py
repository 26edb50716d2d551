"""Reporting to GitHub end to end: real broker, real `hamster web` and worker, the fake GitHub over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from hamster.github.reporting import comment_marker
from tests.fakegithub import FakeGitHub
from tests.integration.git_origins import pull_request_origin
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

HEAD = "1111111111111111111111111111111111111111"


@pytest.fixture(scope="module")
def fake():
    with FakeGitHub() as server:
        yield server


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> dict:
    """A bare ``acme/gh-build.git`` with main and a pull request head ``refs/pull/<n>/head``."""
    root = tmp_path_factory.mktemp("git")
    head = pull_request_origin(root, tmp_path_factory.mktemp("work"), "acme/gh-build")
    return {"url": f"file://{root}/", "head": head}


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake, origin):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("github"), "tests.pipelines.github_catalog")
    hamster.env.update(
        {
            "HAMSTER_GITHUB_GIT_URL": origin["url"],
            "HAMSTER_GITHUB_API_URL": fake.url,
            "HAMSTER_GITHUB_API_TOKEN": fake.token,
            "HAMSTER_GITHUB_WRITE_INTERVAL_S": "0.05",
            "HAMSTER_PUBLIC_URL": "https://ci.example.com",
        }
    )
    with hamster.running({"gh-ci", "gh-fails", "gh-commands", "gh-build", "gh-slow", "gh-supersede"}):
        yield hamster


def pr(repo: str, sha: str) -> dict:
    """The recorded pull_request sample, moved to ``repo`` with head sha ``sha``."""
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    payload["pull_request"]["head"]["sha"] = sha
    return payload


def statuses_done(fake: FakeGitHub, repo: str, sha: str, count: int):
    return wait_until(
        lambda: (s := fake.statuses(repo, sha)) and len(s) >= count and s,
        90,
        what=f"{count} statuses on {repo}@{sha[:7]}",
    )


def test_opened_pr_gets_pending_then_success_and_a_comment(system: System, fake: FakeGitHub):
    """A pull_request opened webhook: pending then success on the head sha, and a marked PR comment."""
    payload = pr("acme/gh-ok", HEAD)
    status, delivery = system.post("pull_request", payload)
    assert status == 202
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "succeeded", run
    pending, success = statuses_done(fake, "acme/gh-ok", HEAD, 2)
    assert (pending["state"], success["state"]) == ("pending", "success")
    assert {pending["context"], success["context"]} == {"hamster/gh-ci"}
    assert success["description"] == "all 2 stages passed"
    assert success["target_url"] == f"https://ci.example.com/runs/{run['run_id']}"
    [posted] = fake.comments("acme/gh-ok", payload["number"])
    assert posted["body"].startswith(f"Hamster built {HEAD}: all good.")
    assert comment_marker(run["run_id"], "say-ok") in posted["body"]
    assert all(r.authorization == f"token {fake.token}" for r in fake.requests)


def test_failing_pipeline_reports_failure_naming_the_stage(system: System, fake: FakeGitHub):
    """A failing stage gives a failure status whose description names the stage."""
    sha = "2222222222222222222222222222222222222222"
    _, delivery = system.post("pull_request", pr("acme/gh-fails", sha))
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "failed"
    pending, failure = statuses_done(fake, "acme/gh-fails", sha, 2)
    assert (pending["state"], failure["state"]) == ("pending", "failure")
    assert failure["description"].startswith("stage lint failed")
    assert "lint found 3 problems" in failure["description"]


def test_superseded_run_is_reported_cancelled(system: System, fake: FakeGitHub):
    """cancel-superseded: a new push cancels the PR's running run, and its commit status says so."""
    old, new = "3" * 40, "4" * 40
    _, first = system.post("pull_request", pr("acme/gh-supersede", old))
    wait_until(lambda: [r for r in system.runs_for(first) if r["status"] == "running"], 90, what="run 1")
    newer = pr("acme/gh-supersede", new)
    newer["action"] = "synchronize"
    _, second = system.post("pull_request", newer)
    [cancelled] = system.wait_finished(first, timeout=90)
    [replacing] = system.wait_finished(second, timeout=90)
    assert (cancelled["status"], replacing["status"]) == ("cancelled", "succeeded")
    pending, error = statuses_done(fake, "acme/gh-supersede", old, 2)
    assert (pending["state"], error["state"]) == ("pending", "error")
    assert error["description"] == f"cancelled: superseded by run {replacing['run_id']}"
    assert [s["state"] for s in statuses_done(fake, "acme/gh-supersede", new, 2)] == ["pending", "success"]


def test_comment_with_the_marker_triggers_nothing(system: System, fake: FakeGitHub):
    """An issue_comment carrying Hamster's marker starts no run; the same comment without it does."""
    base = with_repo(load("issue_comment", "created.payload.json"), "acme/gh-comments")
    own = with_repo(load("issue_comment", "created.payload.json"), "acme/gh-comments")
    own["comment"]["body"] = "Tests passed.\n\n" + comment_marker("some-run", "comment")
    _, own_delivery = system.post("issue_comment", own)
    _, plain_delivery = system.post("issue_comment", base)  # same repository: same partition, after it
    [run] = system.wait_finished(plain_delivery, timeout=90)
    assert run["subscriber"] == "gh-commands"
    assert system.runs_for(own_delivery) == []


def test_checkout_shell_and_comment_pipeline(system: System, fake: FakeGitHub, origin: dict):
    """checkout → shell → comment through the worker: the PR head is tested, reported, and cleaned up."""
    payload = pr("acme/gh-build", origin["head"])
    _, delivery = system.post("pull_request", payload)
    [run] = system.wait_finished(delivery, timeout=120)
    assert run["status"] == "succeeded", run
    checkout_out, tests_out = run["stages"][0]["output"], run["stages"][1]["output"]
    assert checkout_out["head"] == origin["head"]
    assert tests_out["exit_code"] == 0 and tests_out["output"].endswith("1 passed\n")
    [posted] = fake.comments("acme/gh-build", payload["number"])
    assert posted["body"].startswith(f"Tests on {origin['head'][:7]}: ")
    assert "1 passed" in posted["body"]
    assert [s["state"] for s in statuses_done(fake, "acme/gh-build", origin["head"], 2)] == [
        "pending",
        "success",
    ]
    assert Path(tests_out["log"]).is_file()
    wait_until(lambda: not Path(checkout_out["workspace"]).exists(), 60, what="the workspace to be removed")


def test_shell_past_its_timeout_fails_the_run(system: System, fake: FakeGitHub):
    """A shell stage past its timeout fails with TaskTimeout, and the failure status names it."""
    sha = "3333333333333333333333333333333333333333"
    _, delivery = system.post("pull_request", pr("acme/gh-slow", sha))
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "failed"
    assert run["stages"][0]["error"]["type"] == "TaskTimeout"
    _, failure = statuses_done(fake, "acme/gh-slow", sha, 2)
    assert failure["state"] == "failure" and failure["description"].startswith(
        "stage slow failed: TaskTimeout"
    )


def test_token_never_reaches_logs(system: System, fake: FakeGitHub):
    """After a run reported with the token (and the runs above), neither the worker's nor the intake's log
    contains the token."""
    sha = "5555555555555555555555555555555555555555"
    _, delivery = system.post("pull_request", pr("acme/gh-fails", sha))
    system.wait_finished(delivery, timeout=90)
    statuses_done(fake, "acme/gh-fails", sha, 2)
    for name in ("worker-1", "web"):
        assert fake.token not in (system.home / f"{name}.log").read_text(errors="replace")
