"""Event facts (ctx.event) from recorded GitHub payloads."""

from __future__ import annotations

import pytest

from hamster.github_events import EVENT_NAMES, event_info
from tests.samples import all_samples, branch_push, load


@pytest.mark.parametrize(("event", "path"), all_samples(), ids=lambda v: getattr(v, "name", v))
def test_every_sample_yields_facts(event, path):
    """Every recorded payload gives facts whose repo, action and sender are the payload's own."""
    import json

    payload = json.loads(path.read_text())
    info = event_info(event, "d-1", payload)
    assert event in EVENT_NAMES
    assert info.name == event
    assert info.repo == (payload.get("repository") or {}).get("full_name")
    assert info.action == payload.get("action")
    assert info.sender == (payload.get("sender") or {}).get("login")
    assert info.payload is payload or info.payload == payload


def test_pull_request_facts():
    """A pull_request event gives its base branch, head sha, number and labels."""
    payload = load("pull_request", "labeled.payload.json")
    info = event_info("pull_request", "d", payload)
    assert info.branch == payload["pull_request"]["base"]["ref"]
    assert info.sha == payload["pull_request"]["head"]["sha"]
    assert info.pr_number == payload["number"]
    assert info.labels == tuple(lb["name"] for lb in payload["pull_request"]["labels"])
    assert info.changed_paths is None


def test_push_facts():
    """A push gives the pushed branch, the new head and the files its commits touched."""
    payload = branch_push("main", ("src/a.py", "docs/b.md"))
    info = event_info("push", "d", payload)
    assert info.ref == payload["ref"]
    assert info.branch == payload["ref"].removeprefix("refs/heads/")
    assert info.sha == payload["after"]
    expected = {f for c in payload["commits"] for k in ("added", "modified", "removed") for f in c[k]}
    assert set(info.changed_paths or ()) == expected == {"src/a.py", "docs/b.md"}


def test_tag_push_has_no_branch():
    """A tag push has a ref but no branch, so branch filters never match it."""
    payload = load("push", "1.payload.json")  # the recorded sample is a tag push
    info = event_info("push", "d", payload)
    assert info.ref == "refs/tags/simple-tag"
    assert info.branch is None


def test_comment_on_pull_request():
    """An issue_comment on a PR carries the PR number and the comment body."""
    payload = load("issue_comment", "created.payload.json")
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/x/y/pulls/1"}
    info = event_info("issue_comment", "d", payload)
    assert info.pr_number == payload["issue"]["number"]
    assert info.comment == payload["comment"]["body"]


def test_missing_fields_are_none():
    """A payload without repository or sender gives None, not an error."""
    info = event_info("ping", "d", {"zen": "Keep it logically awesome."})
    assert (info.repo, info.sender, info.sha, info.branch, info.pr_number) == (None, None, None, None, None)


def test_merge_group_facts():
    """A merge_group event gives the group's head sha and ref, and the base branch it merges into."""
    payload = load("merge_group", "checks_requested.payload.json")
    info = event_info("merge_group", "d", payload)
    group = payload["merge_group"]
    assert info.sha == group["head_sha"] == "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
    assert info.ref == group["head_ref"]
    assert info.branch == "main"
    assert info.pr_number is None
    assert (info.deployment_id, info.environment) == (None, None)


def test_deployment_facts():
    """A deployment gives its sha, ref (a branch name here), id and environment."""
    payload = load("deployment", "payload.json")
    info = event_info("deployment", "d", payload)
    assert info.sha == payload["deployment"]["sha"]
    assert (info.ref, info.branch) == ("master", "master")
    assert info.deployment_id == payload["deployment"]["id"] == 145988746
    assert info.environment == "production"


def test_deployment_status_facts():
    """A deployment_status gives its deployment's sha, ref and id, and the status's environment."""
    payload = load("deployment_status", "payload.json")
    info = event_info("deployment_status", "d", payload)
    assert info.sha == payload["deployment"]["sha"]
    assert info.branch == "master"
    assert info.deployment_id == payload["deployment"]["id"]
    assert info.environment == payload["deployment_status"]["environment"] == "production"


@pytest.mark.parametrize(
    ("ref", "branch"),
    [
        ("refs/heads/release/2", "release/2"),
        ("refs/tags/v1.0", None),
        ("f95f852bd8fca8fcc58a9a2d6c842781e32a215e", None),
    ],
)
def test_deployment_of_a_tag_or_sha_has_no_branch(ref, branch):
    """A deployment of a full sha or a refs/tags/ ref has no branch; refs/heads/ is stripped."""
    payload = load("deployment", "payload.json")
    payload["deployment"]["ref"] = ref  # derived: the recorded sample deploys the branch "master"
    info = event_info("deployment", "d", payload)
    assert (info.ref, info.branch) == (ref, branch)
