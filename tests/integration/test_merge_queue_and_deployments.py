"""Merge queues and deployments end to end: real broker, real `hamster web` and worker, the fake GitHub."""

from __future__ import annotations

import pytest

from tests.fakegithub import FakeGitHub
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake():
    with FakeGitHub() as server:
        yield server


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory, fake):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("mq"), "tests.pipelines.merge_queue_catalog")
    hamster.env.update(
        {
            "HAMSTER_GITHUB_API_URL": fake.url,
            "HAMSTER_GITHUB_API_TOKEN": fake.token,
            "HAMSTER_GITHUB_WRITE_INTERVAL_S": "0.05",
            "HAMSTER_PUBLIC_URL": "https://ci.example.com",
        }
    )
    with hamster.running({"mq-required", "mq-slow", "deploy", "deploy-broken", "after-deploy"}):
        yield hamster


def group(repo: str, action: str = "checks_requested", reason: str | None = None) -> dict:
    """The recorded checks_requested, moved to ``repo``; for ``destroyed`` (GitHub publishes no sample of
    it) the action is changed and GitHub's ``reason`` added."""
    payload = with_repo(load("merge_group", "checks_requested.payload.json"), repo)
    payload["action"] = action
    if reason is not None:
        payload["reason"] = reason
    return payload


def statuses(fake: FakeGitHub, repo: str, sha: str, count: int) -> list[dict]:
    return list(
        wait_until(
            lambda: (s := fake.statuses(repo, sha)) and len(s) >= count and s,
            90,
            what=f"{count} statuses on {repo}@{sha[:7]}",
        )
    )


def test_merge_group_gets_the_required_status_on_its_head(system: System, fake: FakeGitHub):
    """checks_requested runs the subscriber on the group's head commit and reports the status a branch
    protection rule can require: pending then success under hamster/<subscriber>."""
    payload = group("acme/mq-ok")
    head = payload["merge_group"]["head_sha"]
    _, delivery = system.post("merge_group", payload)
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "succeeded", run
    assert run["stages"][0]["output"] == {
        "sha": head,
        "ref": payload["merge_group"]["head_ref"],
        "branch": "main",
    }
    pending, success = statuses(fake, "acme/mq-ok", head, 2)
    assert (pending["state"], success["state"]) == ("pending", "success")
    assert {pending["context"], success["context"]} == {"hamster/mq-required"}


def test_destroyed_merge_group_cancels_its_running_run(system: System, fake: FakeGitHub):
    """destroyed (dequeued) cancels the group's run mid-stage, and its status says why."""
    payload = group("acme/mq-slow")
    head = payload["merge_group"]["head_sha"]
    _, requested = system.post("merge_group", payload)
    wait_until(lambda: [r for r in system.runs_for(requested) if r["status"] == "running"], 90, what="run")
    status, destroyed = system.post("merge_group", group("acme/mq-slow", "destroyed", "dequeued"))
    assert status == 202
    [run] = system.wait_finished(requested, timeout=90)
    assert run["status"] == "cancelled", run
    assert system.runs_for(destroyed) == []  # no subscriber takes destroyed: it only cancels
    pending, error = statuses(fake, "acme/mq-slow", head, 2)
    assert (pending["state"], error["state"]) == ("pending", "error")
    assert error["description"] == "cancelled: merge group destroyed: dequeued"


def deployment_statuses(fake: FakeGitHub, repo: str, deployment_id: int, count: int) -> list[dict]:
    return list(
        wait_until(
            lambda: (s := fake.deployment_statuses(repo, deployment_id)) and len(s) >= count and s,
            90,
            what=f"{count} deployment statuses of {repo} #{deployment_id}",
        )
    )


def test_deployment_run_reports_deployment_statuses(system: System, fake: FakeGitHub):
    """A deployment's run gets queued, in_progress per stage and success on the deployment, not on the
    commit, each with the run's page as log URL, and the environment URL its ship stage returned from then
    on; its deployment_status webhooks start nothing, a status by someone else starts a run."""
    payload = with_repo(load("deployment", "payload.json"), "acme/site")
    deployment = payload["deployment"]
    fake.add_deployment("acme/site", deployment["id"], deployment["sha"], deployment["ref"])
    _, delivery = system.post("deployment", payload)
    [run] = system.wait_finished(delivery, timeout=90)
    assert run["status"] == "succeeded", run
    site = "https://production.site.example.com"
    assert run["stages"][0]["output"] == {
        "deployment": deployment["id"],
        "environment": "production",
        "environment_url": site,
    }
    posted = deployment_statuses(fake, "acme/site", deployment["id"], 4)
    assert [s["state"] for s in posted] == ["queued", "in_progress", "in_progress", "success"]
    mark = f"(hamster run {run['run_id'][:8]})"
    assert [s["description"] for s in posted] == [
        f"queued: ship → verify {mark}",
        f"running ship {mark}",
        f"running verify {mark}",
        f"all 2 stages passed {mark}",
    ]
    page = f"https://ci.example.com/runs/{run['run_id']}"
    assert [s["log_url"] for s in posted] == [page] * 4
    assert [s["environment_url"] for s in posted] == ["", "", site, site]
    assert fake.statuses("acme/site", deployment["sha"]) == []

    # GitHub sends a deployment_status webhook for each status; derived from the recorded one.
    own = with_repo(load("deployment_status", "payload.json"), "acme/site")
    own["deployment_status"].update(state="success", description=posted[-1]["description"])
    _, own_delivery = system.post("deployment_status", own)
    other = with_repo(load("deployment_status", "payload.json"), "acme/site")
    _, other_delivery = system.post("deployment_status", other)  # same repository: same partition, after
    [smoke] = system.wait_finished(other_delivery, timeout=90)
    assert (smoke["subscriber"], smoke["status"]) == ("after-deploy", "succeeded")
    assert system.runs_for(own_delivery) == []


def test_failing_deployment_run_posts_failure(system: System, fake: FakeGitHub):
    """A deployment whose run fails gets failure naming the stage, with the log URL and no environment
    URL (though its ship stage returned one)."""
    payload = with_repo(load("deployment", "payload.json"), "acme/site-broken")
    deployment = payload["deployment"]
    fake.add_deployment("acme/site-broken", deployment["id"], deployment["sha"], deployment["ref"])
    _, delivery = system.post("deployment", payload)
    [run] = system.wait_finished(delivery, timeout=90)
    assert (run["subscriber"], run["status"]) == ("deploy-broken", "failed"), run
    posted = deployment_statuses(fake, "acme/site-broken", deployment["id"], 4)
    assert [s["state"] for s in posted] == ["queued", "in_progress", "in_progress", "failure"]
    failure = posted[-1]
    mark = f"(hamster run {run['run_id'][:8]})"
    assert failure["description"].startswith("stage broken_verify failed: ")
    assert "smoke test failed" in failure["description"] and failure["description"].endswith(mark)
    assert failure["log_url"] == f"https://ci.example.com/runs/{run['run_id']}"
    assert failure["environment_url"] == ""
    assert fake.statuses("acme/site-broken", deployment["sha"]) == []
