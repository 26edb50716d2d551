"""Hamster as a GitHub App end to end: real broker, real `hamster web` and worker, the strict fake GitHub.

The fake checks credentials as GitHub does (the app's JWT against its public key, installation tokens that
expire, check-run writes from an installation only), and serves git over https checking the installation
token as github.com does.
"""

from __future__ import annotations

import pytest

from hamster.github.reporting import carries_marker
from tests.fakegithub import FakeGitHub
from tests.fakegithub.git_https import GitOverHttps
from tests.integration.fault_tools import run_log
from tests.integration.git_origins import pull_request_origin
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

ONE, TWO = 101, 202  # two installations of the app: acme's and widgets'
SUBSCRIBERS = {"app-ci", "app-fails", "app-hold", "app-checkout", "app-gated"}
GATED = ("acme/app-gated-1", "acme/app-gated-2")


@pytest.fixture(scope="module")
def fake():
    with FakeGitHub() as server:
        acme = ["acme/app-one", "acme/app-fails", "acme/app-hold", "acme/app-build", "acme/app-again", *GATED]
        server.app.install(ONE, "acme", acme)
        for repo in GATED:
            server.repo(repo).permissions.update(octocat="write", mallory="read")
        server.app.install(TWO, "widgets", ["widgets/app-two"])
        yield server


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> dict:
    """A bare ``acme/app-build.git`` with main and a pull request head ``refs/pull/<n>/head``."""
    root = tmp_path_factory.mktemp("git")
    head = pull_request_origin(root, tmp_path_factory.mktemp("work"), "acme/app-build")
    return {"root": root, "head": head}


@pytest.fixture(scope="module")
def git_https(fake, origin, tmp_path_factory):
    with GitOverHttps(origin["root"], fake.app, tmp_path_factory.mktemp("tls")) as server:
        yield server


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake, git_https):
    home = tmp_path_factory.mktemp("github-app")
    hamster = System(kafka_bootstrap, home, "tests.pipelines.github_app_catalog")
    hamster.env.update(
        {
            "HAMSTER_GITHUB_API_URL": fake.url,
            "HAMSTER_GITHUB_APP_ID": str(fake.app.app_id),
            "HAMSTER_GITHUB_APP_KEY": str(fake.app.write_key(home / "app.pem")),
            "HAMSTER_GITHUB_GIT_URL": git_https.url,
            "GIT_SSL_CAINFO": str(git_https.cert),  # git trusts the fake's self-signed certificate
            "HAMSTER_GITHUB_WRITE_INTERVAL_S": "0.05",
            "HAMSTER_PUBLIC_URL": "https://ci.example.com",
        }
    )
    hamster.env.pop("HAMSTER_GITHUB_API_TOKEN", None)
    with hamster.running(SUBSCRIBERS):
        yield hamster


def pr(repo: str, sha: str, installation: int | None) -> dict:
    """The recorded pull_request sample, moved to ``repo`` at ``sha``, delivered through ``installation``
    (the recorded sample is a repository webhook: it has no ``installation``)."""
    payload = with_repo(load("pull_request", "opened.payload.json"), repo)
    payload["pull_request"]["head"]["sha"] = sha
    if installation is not None:
        payload["installation"] = {"id": installation, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
    return payload


def check_run_webhook(fake: FakeGitHub, repo: str, check: dict, action: str, installation: int) -> dict:
    """The recorded check_run sample, about ``check`` (a check run the fake holds) and ``action``."""
    payload = with_repo(load("check_run", "requested_action.payload.json"), repo)
    payload["action"] = action
    payload["check_run"].update(
        id=check["id"],
        head_sha=check["head_sha"],
        external_id=check["external_id"],
        name=check["name"],
        status=check["status"],
        conclusion=check.get("conclusion"),
        app=check["app"],
    )
    payload["installation"]["id"] = installation
    if action != "requested_action":
        payload.pop("requested_action")
    return payload


def checks_done(fake: FakeGitHub, repo: str, count: int = 1) -> list[dict]:
    return list(
        wait_until(
            lambda: (
                [c for c in fake.repo(repo).check_runs.values() if c.get("status") == "completed"]
                if len([c for c in fake.repo(repo).check_runs.values() if c.get("status") == "completed"])
                >= count
                else None
            ),
            90,
            what=f"{count} completed check run(s) on {repo}",
        )
    )


def test_each_installation_reports_with_its_own_token(system: System, fake: FakeGitHub):
    """PR webhooks of two installations: each run's statuses, check run and comment use its own token."""
    sha = "a1" * 20
    _, first = system.post("pull_request", pr("acme/app-one", sha, ONE))
    _, second = system.post("pull_request", pr("widgets/app-two", sha, TWO))
    for delivery in (first, second):
        [run] = system.wait_finished(delivery, timeout=90)
        assert run["status"] == "succeeded", run
    for repo, installation in (("acme/app-one", ONE), ("widgets/app-two", TWO)):
        [check] = checks_done(fake, repo)
        assert check["conclusion"] == "success" and check["app"]["id"] == fake.app.app_id
        assert check["actions"] == []  # the Cancel button goes once the run has ended
        statuses = wait_until(lambda r=repo: len(fake.statuses(r, sha)) >= 2 and fake.statuses(r, sha), 60)
        assert [s["state"] for s in statuses] == ["pending", "success"]
        assert len(fake.comments(repo, load("pull_request", "opened.payload.json")["number"])) == 1
        calls = [r for r in fake.requests if r.path.startswith(f"/repos/{repo}/")]
        assert calls and {fake.installation_of(r) for r in calls} == {installation}
    assert not [r for r in fake.requests if r.authorization and r.authorization.startswith("token ") and
                fake.installation_of(r) is None]  # fmt: skip


def test_a_token_ended_early_is_renewed_without_failing_the_run(system: System, fake: FakeGitHub):
    """GitHub ending the installation's token early: the worker gets a new one; the run and its reports
    go through as if nothing happened."""
    sha = "b2" * 20
    issued_before = len(fake.app.issued)
    fake.app.expire_tokens(ONE)
    _, delivery = system.post("pull_request", pr("acme/app-one", sha, ONE))
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "succeeded", run
    assert [s["status"] for s in run["stages"]] == ["succeeded", "succeeded"]
    statuses = wait_until(lambda: len(fake.statuses("acme/app-one", sha)) >= 2, 60)
    assert statuses and [s["state"] for s in fake.statuses("acme/app-one", sha)] == ["pending", "success"]
    assert len(fake.app.issued) > issued_before  # a new token was asked for …
    assert any(r.method == "POST" and r.path.endswith("/access_tokens") for r in fake.requests)


def test_check_run_rerequested_reruns_from_the_failed_stage(system: System, fake: FakeGitHub):
    """GitHub's Re-run on a failed run's check run starts its rerun, from the stage that failed."""
    sha = "c3" * 20
    _, delivery = system.post("pull_request", pr("acme/app-fails", sha, ONE))
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "failed"
    [check] = checks_done(fake, "acme/app-fails")
    assert (check["external_id"], check["conclusion"]) == (run["run_id"], "failure")
    status, _ = system.post("check_run", check_run_webhook(fake, "acme/app-fails", check, "rerequested", ONE))
    assert status == 202
    runs = system.wait_finished(delivery, count=2, timeout=120)
    [rerun] = [r for r in runs if r["run_id"] != run["run_id"]]
    assert rerun["status"] == "failed" and rerun["stages"][1]["status"] == "failed"
    marks = system.marks_list()
    assert (rerun["run_id"], "app_lint", 1) in marks
    assert not [m for m in marks if m[0] == rerun["run_id"] and m[1] == "app_build"]  # reused, not run
    checks_done(fake, "acme/app-fails", count=2)  # the rerun reports a check run of its own


def test_cancel_button_cancels_the_run_and_says_who(system: System, fake: FakeGitHub):
    """The check run's Cancel button (requested_action) cancels the run; the log names who clicked."""
    sha = "d4" * 20
    _, delivery = system.post("pull_request", pr("acme/app-hold", sha, ONE))
    wait_until(lambda: [r for r in system.runs_for(delivery) if r["status"] == "running"], 90, what="run")
    check = wait_until(
        lambda: next(
            (c for c in fake.repo("acme/app-hold").check_runs.values() if c["status"] == "in_progress"), None
        ),
        60,
        what="the check run in progress",
    )
    assert [a["identifier"] for a in check["actions"]] == ["cancel"]
    payload = check_run_webhook(fake, "acme/app-hold", check, "requested_action", ONE)
    payload["requested_action"] = {"identifier": "cancel"}
    assert system.post("check_run", payload)[0] == 202
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "cancelled"
    assert run["reason"] == f"cancelled by @{payload['sender']['login']} from GitHub"
    [done] = checks_done(fake, "acme/app-hold")
    assert done["conclusion"] == "cancelled"


def test_checkout_over_https_with_the_installation_token(
    system: System, fake: FakeGitHub, git_https: GitOverHttps, origin: dict
):
    """checkout fetches over https as x-access-token with the installation's token, never stored."""
    _, delivery = system.post("pull_request", pr("acme/app-build", origin["head"], ONE))
    [run] = system.wait_finished(delivery, timeout=120)
    assert run["status"] == "succeeded", run
    checkout_out = run["stages"][0]["output"]
    assert checkout_out["head"] == origin["head"]
    output = run["stages"][1]["output"]["output"]  # the checkout's .git/config, printed by the shell stage
    assert "\nchecked out\n" in output and f"url = {git_https.url}acme/app-build.git" in output
    assert git_https.seen and {installation for _, installation in git_https.seen} == {ONE}
    tokens = [token for installation, token in fake.app.issued if installation == ONE]
    assert tokens and not any(token in output for token in tokens)
    for name in ("worker-1", "web"):
        log = (system.home / f"{name}.log").read_text(errors="replace")
        assert not any(token in log for token in tokens)


def test_check_suite_rerequested_reruns_the_latest_run_from_the_start(system: System, fake: FakeGitHub):
    """Re-run all checks on the suite: Hamster's run on that commit is rerun, every stage again."""
    sha = "e5" * 20
    _, delivery = system.post("pull_request", pr("acme/app-one", sha, ONE))
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "succeeded"
    check = wait_until(
        lambda: next(
            (
                c
                for c in fake.repo("acme/app-one").check_runs.values()
                if c["head_sha"] == sha and c["status"] == "completed"
            ),
            None,
        ),
        60,
        what="the run's check run to complete",
    )
    payload = with_repo(load("check_suite", "requested.payload.json"), "acme/app-one")
    payload["action"] = "rerequested"  # the recorded sample is GitHub's own "requested"
    payload["check_suite"].update(head_sha=sha, app=check["app"])
    payload["installation"]["id"] = ONE
    assert system.post("check_suite", payload)[0] == 202
    runs = system.wait_finished(delivery, count=2, timeout=120)
    [rerun] = [r for r in runs if r["run_id"] != run["run_id"]]
    assert rerun["status"] == "succeeded"
    assert (rerun["run_id"], "app_build", 1) in system.marks_list()  # from the start: build ran again


def click(fake: FakeGitHub, repo: str, check: dict, identifier: str, login: str) -> dict:
    """``login`` clicking the button ``identifier`` on ``check``: GitHub's requested_action webhook."""
    payload = check_run_webhook(fake, repo, check, "requested_action", ONE)
    payload["requested_action"] = {"identifier": identifier}
    payload["sender"]["login"] = login
    return payload


def waiting_check(system: System, fake: FakeGitHub, repo: str) -> tuple[str, str, dict]:
    """Open a pull request on ``repo``; (its delivery, its run id, its check run) once that offers
    Approve."""
    _, delivery = system.post("pull_request", pr(repo, "f6" * 20, ONE))
    check = wait_until(
        lambda: next(
            (
                c
                for c in fake.repo(repo).check_runs.values()
                if "approve" in [a["identifier"] for a in c.get("actions", [])]
            ),
            None,
        ),
        90,
        what="the check run to offer Approve",
    )
    [run] = system.runs_for(delivery)
    return delivery, run["run_id"], check


def test_the_approve_button_lets_a_writer_approve_and_then_goes(system: System, fake: FakeGitHub):
    """While app_go waits, the check run offers Approve, Deny and Cancel (within GitHub's limits: the fake
    refuses more); octocat (write) clicks Approve: the log says he did, from the check run, ship runs, and
    the buttons go."""
    repo = GATED[0]
    delivery, run_id, check = waiting_check(system, fake, repo)
    assert [a["identifier"] for a in check["actions"]] == ["approve", "deny", "cancel"]
    assert (
        check["status"] == "in_progress" and "| app_go | waiting for approval |" in check["output"]["summary"]
    )
    assert system.post("check_run", click(fake, repo, check, "approve", "octocat"))[0] == 202
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "succeeded", run
    assert {s["name"]: s["output"] for s in run["stages"]}["app_ship"] == {"approved_by": "octocat"}
    [approved] = [r for r in run_log(system, run_id) if r.type == "StageApproved"]
    assert (approved.by, approved.via, approved.stage) == ("octocat", "check_run", "app_go")
    assert fake.seen("GET", f"/repos/{repo}/collaborators/octocat/permission")
    [done] = checks_done(fake, repo)
    assert done["conclusion"] == "success" and done["actions"] == []
    updates = [r.body for r in fake.seen("PATCH", f"/repos/{repo}/check-runs/{check['id']}")]
    after = [u for u in updates if u.get("output", {}).get("title") == "app_go approved by octocat"]
    assert after and [a["identifier"] for a in after[0]["actions"]] == ["cancel"]


def test_the_approve_button_decides_nothing_for_a_reader(system: System, fake: FakeGitHub):
    """mallory (read) clicks Approve: GitHub says she may not, she is told so on the pull request, and
    nothing is decided: the stage still waits and the button stays."""
    repo = GATED[1]
    delivery, run_id, check = waiting_check(system, fake, repo)
    assert system.post("check_run", click(fake, repo, check, "approve", "mallory"))[0] == 202
    number = load("pull_request", "opened.payload.json")["number"]
    [reply] = wait_until(lambda: fake.comments(repo, number), 60, what="the refusal")
    assert reply["body"].startswith(f"@mallory: only people with write permission on {repo} may approve")
    assert carries_marker(reply["body"])
    assert not [r for r in run_log(system, run_id) if r.type in ("StageApproved", "StageDenied")]
    [state] = [r for r in system.runs() if r["run_id"] == run_id]
    assert {s["name"]: s["status"] for s in state["stages"]}["app_go"] == "pending"
    assert [a["identifier"] for a in fake.repo(repo).check_runs[check["id"]]["actions"]] == [
        "approve",
        "deny",
        "cancel",
    ]
    # Clean up: a writer's Deny ends the run (and shows Deny works too).
    assert system.post("check_run", click(fake, repo, check, "deny", "octocat"))[0] == 202
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "failed" and "octocat denied app_go" in run["reason"]


def test_a_redelivered_rerun_webhook_starts_one_rerun(system: System, fake: FakeGitHub):
    """GitHub delivering the same Re-run twice (one delivery id) starts one rerun; a new click (a new
    delivery), read after both, starts the next."""
    repo = "acme/app-again"
    _, delivery = system.post("pull_request", pr(repo, "a7" * 20, ONE))
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "succeeded", run
    [check] = checks_done(fake, repo)
    payload = check_run_webhook(fake, repo, check, "rerequested", ONE)
    again = "f00dfeed-0000-4000-8000-00000000000a"
    assert system.post("check_run", payload, delivery=again)[0] == 202
    assert system.post("check_run", payload, delivery=again)[0] == 202  # GitHub redelivers it
    # A new click comes after both on the repository's partition: once its rerun is there, both
    # deliveries of the first were carried out.
    assert system.post("check_run", payload)[0] == 202
    runs = system.wait_finished(delivery, count=3, timeout=180)
    reruns = {
        r.run_id for r in run_log(system) if r.type == "RunRequested" and r.original_run_id == run["run_id"]
    }
    assert len(reruns) == 2 and len(runs) == 3, reruns
    assert all(r["status"] == "succeeded" for r in runs)
