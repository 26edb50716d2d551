"""The GitHub adapter and the GitHub tasks over real HTTP against the fake GitHub server."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator

import pytest

from hamster.github.client import GitHubClient
from hamster.github.objects import EventObjects
from hamster.github.reporting import carries_marker, comment_marker
from hamster.github.session import api_url
from hamster.intake.github_events import event_info
from hamster.pipelines.context import TaskContext
from hamster.settings import load_settings
from hamster.tasks import add_labels, assign, comment, merge, remove_labels
from tests.fakegithub import FakeGitHub
from tests.samples import load, with_repo

SHA = "c0ffee0000000000000000000000000000000001"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def settings_for(fake: FakeGitHub, tmp_path, **more):
    return load_settings(
        github_api_url=fake.url, github_api_token=fake.token, github_write_interval_s=0, home=tmp_path, **more
    )


def pr_ctx(fake: FakeGitHub, tmp_path, stage: str = "comment", run_id: str = "run-1") -> TaskContext:
    payload = with_repo(load("pull_request", "opened.payload.json"), "acme/widgets")
    payload["pull_request"]["head"]["sha"] = SHA
    info = event_info("pull_request", "d-1", payload)
    client = GitHubClient(settings_for(fake, tmp_path))
    return TaskContext(
        event=info,
        params={},
        outputs={"tests": {"exit_code": 0}},
        run_id=run_id,
        attempt=1,
        subscriber="ci",
        stage=stage,
        github=EventObjects(client, info),
    )


def test_api_url_defaults_and_enterprise():
    """The API base is github.com's, Enterprise's /api/v3, or the override."""
    assert api_url(load_settings()) == "https://api.github.com"
    assert api_url(load_settings(github_host="ghe.example.com")) == "https://ghe.example.com/api/v3"
    assert api_url(load_settings(github_host="ghe.example.com", github_api_url="http://x/")) == "http://x"


def test_status_is_posted_with_the_token(fake, tmp_path):
    """create_status reaches GitHub over HTTP, authenticated by the token, with the fields given."""
    client = GitHubClient(settings_for(fake, tmp_path))
    client.create_status("acme/widgets", SHA, "pending", "hamster/ci", "queued", "http://ci/runs/1")
    [status] = fake.statuses("acme/widgets", SHA)
    assert (status["state"], status["context"], status["description"], status["target_url"]) == (
        "pending",
        "hamster/ci",
        "queued",
        "http://ci/runs/1",
    )
    assert {r.authorization for r in fake.requests} == {f"token {fake.token}"}


def test_rate_limited_answer_is_waited_out_and_retried(fake, tmp_path):
    """A 403 rate limit and a 429 Retry-After are waited out; the status is then posted once."""
    client = GitHubClient(settings_for(fake, tmp_path))
    fake.fail("rate_limited", method="POST")
    fake.fail("retry_after", method="POST")
    client.create_status("acme/widgets", SHA, "success", "hamster/ci", "ok", None)
    assert len(fake.seen("POST", f"/statuses/{SHA}")) == 3
    assert [s["state"] for s in fake.statuses("acme/widgets", SHA)] == ["success"]


def test_objects_are_fetched_once_per_stage(fake, tmp_path):
    """ctx.github.pull_request and .repository are fetched lazily, and only once."""
    ctx = pr_ctx(fake, tmp_path)
    assert fake.requests == []
    assert ctx.github is not None
    first = ctx.github.pull_request
    assert first is not None and first.number == ctx.event.pr_number
    assert ctx.github.pull_request is first
    assert ctx.github.repository is not None and ctx.github.repository.full_name == "acme/widgets"
    assert len(fake.seen("GET", "/repos/acme/widgets")) == 2  # the repository, then the pull request


def test_comment_carries_marker_and_is_not_posted_twice(fake, tmp_path):
    """The comment task posts the body with a hidden marker; running it again edits, not duplicates."""
    ctx = pr_ctx(fake, tmp_path)
    post = comment("Tests: exit {outputs[tests][exit_code]} on {event.sha}")
    first = post(ctx)
    again = post(ctx)
    [posted] = fake.comments("acme/widgets", ctx.event.pr_number)
    assert posted["body"].startswith(f"Tests: exit 0 on {SHA}")
    assert comment_marker("run-1", "comment") in posted["body"] and carries_marker(posted["body"])
    assert first["comment_id"] == again["comment_id"] and again["edited"] is True


def test_labels_assign_and_merge(fake, tmp_path):
    """Labels are added and removed, users assigned, and the PR merged at the event's sha."""
    ctx = pr_ctx(fake, tmp_path)
    number = ctx.event.pr_number
    assert add_labels("ci-passed", "ready")(ctx) == ["ci-passed", "ready"]
    assert remove_labels("ready", "absent")(ctx) == ["ci-passed"]
    assert fake.repo("acme/widgets").labels[number] == ["ci-passed"]
    assert assign("octocat")(ctx) == ["octocat"]
    assert fake.repo("acme/widgets").assignees[number] == ["octocat"]
    assert merge(method="squash")(ctx) == {"merged": True, "already": False}
    [put] = fake.seen("PUT", f"/pulls/{number}/merge")
    assert put.body["sha"] == SHA and put.body["merge_method"] == "squash"


def app_settings_for(fake: FakeGitHub, tmp_path, **more):
    """Settings of the fake's GitHub App (installed on acme/widgets) instead of the personal token."""
    fake.app.install(71, "acme", ["acme/widgets"])
    return load_settings(
        github_api_url=fake.url,
        github_app_id=fake.app.app_id,
        github_app_key=fake.app.write_key(tmp_path / "app.pem"),
        github_write_interval_s=0,
        home=tmp_path,
        **more,
    )


def test_check_run_is_found_again_by_external_id(fake, tmp_path):
    """A check run made for a run is found by its external id, so a retry does not create another."""
    client = GitHubClient(app_settings_for(fake, tmp_path))
    assert client.find_check_run("acme/widgets", SHA, "hamster/ci", "run-1") is None
    made = client.create_check_run("acme/widgets", SHA, "hamster/ci", external_id="run-1", status="queued")
    assert client.find_check_run("acme/widgets", SHA, "hamster/ci", "run-1") == made
    client.update_check_run("acme/widgets", made, status="completed", conclusion="success")
    assert fake.repo("acme/widgets").check_runs[made]["conclusion"] == "success"


def test_client_works_in_a_forked_child_while_its_lock_is_held(fake, tmp_path):
    """A blocking task forked while another thread held the client's lock still reaches GitHub."""
    client = GitHubClient(settings_for(fake, tmp_path))
    client.repository("acme/widgets")
    fork = multiprocessing.get_context("fork")
    with client._shared.lock:  # as if the reporting agent's thread were mid-call at the moment of the fork
        child = fork.Process(
            target=client.create_status, args=("acme/widgets", SHA, "success", "hamster/ci", "ok", None)
        )
        child.start()
        child.join(60)
    if child.exitcode is None:
        child.kill()
        child.join()
    assert child.exitcode == 0
    assert [s["state"] for s in fake.statuses("acme/widgets", SHA)] == ["success"]
