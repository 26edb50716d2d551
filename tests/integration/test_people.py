"""Runs that people start or let through, end to end: real broker, real `hamster web` and workers, the fake
GitHub for commits and permissions. Manual runs (`hamster trigger`, the dashboard's form) and approval
stages (an `/approve` comment from a collaborator, a refused one, `/deny`, the dashboard's button, a
timeout)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from hamster.github.reporting import carries_marker
from tests.fakegithub import FakeGitHub
from tests.integration.fault_tools import run_log
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SUBSCRIBERS = {"by-hand", "gated", "gated-quick"}
MAIN = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"
TOKEN = "people-test-token"


@pytest.fixture(scope="module")
def fake():
    with FakeGitHub() as server:
        server.repo("people/app").branches["main"] = MAIN
        for repo in ("people/gated-1", "people/gated-2", "people/gated-3"):
            server.repo(repo).permissions.update(octocat="write", mallory="read")
        yield server


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("people"), "tests.pipelines.people")
    hamster.env.update(
        HAMSTER_GITHUB_API_URL=fake.url,
        HAMSTER_GITHUB_API_TOKEN=fake.token,
        HAMSTER_GITHUB_WRITE_INTERVAL_S="0.05",
        HAMSTER_API_TOKEN=TOKEN,
    )
    with hamster.running(SUBSCRIBERS, workers=1):
        yield hamster


def api(system: System, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{system.intake_port}{path}",
        data=json.dumps(body).encode() if body is not None else b"",
        method="POST",
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def run_by_id(system: System, run_id: str, timeout: float = 90) -> dict:
    def finished() -> dict | None:
        found = [r for r in system.runs() if r["run_id"] == run_id]
        return found[0] if found and found[0]["status"] in {"succeeded", "failed", "cancelled"} else None

    return wait_until(finished, timeout, what=f"run {run_id} to finish")


def test_hamster_trigger_starts_a_run_on_the_branch_head(system: System, fake: FakeGitHub):
    """`hamster trigger` resolves main through the GitHub API and the run sees that commit and its params."""
    done = system.cli(
        "trigger",
        "by-hand",
        "--repo",
        "people/app",
        "--ref",
        "main",
        "--param",
        "python=3.13",
        "--as",
        "ada",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    sent = json.loads(done.stdout)
    assert sent["sha"] == MAIN
    run = run_by_id(system, sent["run_id"])
    assert run["status"] == "succeeded", run
    assert run["event"] == "workflow_dispatch" and run["sha"] == MAIN and run["branch"] == "main"
    assert run["stages"][0]["output"] == {
        "event": "workflow_dispatch",
        "repo": "people/app",
        "branch": "main",
        "sha": MAIN,
        "sender": "ada",
        "params": {"python": "3.13", "kept": "yes"},
    }
    assert fake.seen("GET", "/repos/people/app/commits/main")


def test_a_ref_github_does_not_know_or_an_unknown_subscriber_starts_nothing(system: System):
    """A branch that names no commit is refused by GitHub, and so by `hamster trigger`, in one line; so is
    a subscriber no worker published."""
    done = system.cli("trigger", "by-hand", "--repo", "people/app", "--ref", "no-such-branch")
    assert done.returncode == 1
    assert "no commit for 'no-such-branch'" in done.stderr
    unknown = system.cli("trigger", "nobody", "--repo", "people/app", "--ref", "main")
    assert unknown.returncode == 1 and "subscriber nobody: unknown" in unknown.stderr


def test_the_dashboard_form_starts_a_run_with_the_token_only(system: System):
    """POST /api/trigger (the subscribers page form) starts a run; without the bearer token, refused."""
    body = {"subscriber": "by-hand", "repo": "people/app", "ref": "main", "params": {"kept": "over"}}
    assert api(system, "/api/trigger", body, token=None)[0] == 401
    status, text = api(system, "/api/trigger", body)
    assert status == 202, text
    run = run_by_id(system, json.loads(text)["run_id"])
    assert run["status"] == "succeeded"
    assert run["stages"][0]["output"]["params"] == {"python": "3.12", "kept": "over"}
    assert run["stages"][0]["output"]["sender"] == "dashboard"


def open_pr(system: System, repo: str) -> tuple[str, int]:
    """Open a pull request on ``repo``; (the run id, its number) once its approval stage waits."""
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    status, delivery = system.post("pull_request", payload)
    assert status == 202

    def waiting() -> dict | None:
        runs = system.runs_for(delivery)
        stages = {s["name"]: s["status"] for s in runs[0]["stages"]} if runs else {}
        return (
            runs[0]
            if stages.get("go") == "pending" and stages.get("build", "succeeded") == "succeeded"
            else None
        )

    run = wait_until(waiting, 90, what="the approval stage to wait")
    return run["run_id"], payload["number"]


def comment(system: System, repo: str, number: int, body: str, user: str) -> None:
    payload = with_repo(load("issue_comment", "created.payload.json"), repo)
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{repo}/pulls/{number}"}
    payload["comment"]["body"] = body
    payload["sender"]["login"] = user
    assert system.post("issue_comment", payload)[0] == 202


def test_an_approve_comment_from_a_collaborator_lets_the_run_go_on(system: System, fake: FakeGitHub):
    """mallory (read) is refused with a reply and nothing moves; octocat (write) approves: ship runs and sees
    who approved; the run log says who and how."""
    run_id, number = open_pr(system, "people/gated-1")
    comment(system, "people/gated-1", number, "/approve", "mallory")
    [reply] = wait_until(lambda: fake.comments("people/gated-1", number), 60, what="the refusal")
    assert reply["body"].startswith("@mallory: only people with write permission") and carries_marker(
        reply["body"]
    )
    [state] = [r for r in system.runs() if r["run_id"] == run_id]
    assert (
        state["status"] != "succeeded"
        and {s["name"]: s["status"] for s in state["stages"]}["go"] == "pending"
    )
    comment(system, "people/gated-1", number, "/approve", "octocat")
    run = run_by_id(system, run_id)
    assert run["status"] == "succeeded", run
    stages = {s["name"]: s for s in run["stages"]}
    assert stages["go"]["output"]["approved_by"] == "octocat"
    assert stages["ship"]["output"]["approval"]["approved_by"] == "octocat"
    [approved] = [r for r in run_log(system, run_id) if r.type == "StageApproved"]
    assert (approved.by, approved.via, approved.stage) == ("octocat", "comment", "go")
    assert not [r for r in run_log(system, run_id) if r.type == "StageDenied"], (
        "mallory's comment wrote nothing"
    )
    assert fake.seen("GET", "/repos/people/gated-1/collaborators/mallory/permission")


def test_deny_fails_the_run_and_skips_what_needed_the_approval(system: System):
    """`/deny` from a collaborator: the approval fails, ship is skipped, the run fails naming the stage."""
    run_id, number = open_pr(system, "people/gated-2")
    comment(system, "people/gated-2", number, "/deny", "octocat")
    run = run_by_id(system, run_id)
    assert run["status"] == "failed"
    assert {s["name"]: s["status"] for s in run["stages"]} == {
        "build": "succeeded",
        "go": "failed",
        "ship": "skipped",
    }
    assert "octocat denied go" in run["reason"]


def test_the_dashboard_button_approves_with_the_token_only(system: System):
    """POST /api/runs/<id>/stages/go/approve: refused without the token, then approved "by the dashboard"."""
    run_id, _ = open_pr(system, "people/gated-3")
    assert api(system, f"/api/runs/{run_id}/stages/go/approve", token=None)[0] == 401
    assert api(system, f"/api/runs/{run_id}/stages/build/approve")[0] == 404  # no approval stage
    status, text = api(system, f"/api/runs/{run_id}/stages/go/approve")
    assert status == 202, text
    run = run_by_id(system, run_id)
    assert run["status"] == "succeeded"
    [approved] = [r for r in run_log(system, run_id) if r.type == "StageApproved"]
    assert (approved.by, approved.via) == ("dashboard", "dashboard")


def test_an_approval_nobody_gives_times_out_and_fails_the_run(system: System):
    """An approval stage with a 2 s timeout and nobody deciding: the reaper denies it, the run fails."""
    payload = with_repo(load("pull_request", "opened.payload.json"), "people/timeout-1")
    _, delivery = system.post("pull_request", payload)
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "failed"
    [denied] = [r for r in run_log(system, run["run_id"]) if r.type == "StageDenied"]
    assert denied.by is None and denied.reason == "nobody approved go within 2 s"
