"""Event facts (ctx.event) from recorded GitHub payloads."""

from __future__ import annotations

import pytest

from hamster.intake.github_events import EVENT_NAMES, event_info
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
    assert (info.deployment_id, info.environment, info.deployment_task) == (None, None, None)


def test_deployment_facts():
    """A deployment gives its sha, ref (a branch name here), id and environment."""
    payload = load("deployment", "payload.json")
    info = event_info("deployment", "d", payload)
    assert info.sha == payload["deployment"]["sha"]
    assert (info.ref, info.branch) == ("master", "master")
    assert info.deployment_id == payload["deployment"]["id"] == 145988746
    assert info.environment == "production"
    assert info.deployment_task == payload["deployment"]["task"] == "deploy"


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


# The commits the recorded samples name.
PR_HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
MASTER = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
PUSHED = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
WORKFLOW = "3484a3fb816e0859fd6e1cea078d76385ff50625"
REVIEWED = "5275a45b7e99c7fd7265b790392c10a74101a67a"
GROUP_HEAD = "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
ALERTED = "788437584c2522f27feab10d8e631bab3e9e783a"
PAGES = "507fc9acd0d04ac4a9db87d12cb228c052cd813a"
QUEUE_BRANCH = "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64"

# Every recorded event that names a commit or a ref, and what it fills: (event, sample, ref, branch, sha).
COMMITS = [
    ("push", "with-new-branch.payload.json", "refs/heads/master", "master", PUSHED),
    ("pull_request", "opened.payload.json", "changes", "master", PR_HEAD),
    ("pull_request_review", "submitted.payload.json", "changes", "master", PR_HEAD),
    ("pull_request_review_comment", "created.payload.json", "changes", "master", PR_HEAD),
    ("pull_request_review_thread", "resolved.payload.json", "changes", "master", PR_HEAD),
    ("issue_comment", "created.payload.json", None, None, None),
    ("create", "payload.json", "simple-tag", None, None),
    ("delete", "payload.json", "simple-tag", None, None),
    ("check_suite", "requested.payload.json", "refs/heads/master", "master", MASTER),
    ("check_run", "created.payload.json", "refs/heads/changes", "changes", PR_HEAD),
    ("workflow_run", "completed.with-pull-requests.payload.json", "refs/heads/master", "master", WORKFLOW),
    ("workflow_job", "queued.payload.json", "refs/heads/main", "main", WORKFLOW),
    ("deployment_review", "requested.payload.json", "refs/heads/sample", "sample", REVIEWED),
    ("status", "payload.json", None, None, PUSHED),
    ("merge_group", "checks_requested.payload.json", QUEUE_BRANCH, "main", GROUP_HEAD),
    ("deployment", "payload.json", "master", "master", MASTER),
    ("deployment_status", "payload.json", "master", "master", MASTER),
    ("workflow_dispatch", "payload.json", "refs/heads/master", "master", None),
    ("repository_dispatch", "payload.json", "refs/heads/master", "master", None),
    ("release", "published.payload.json", "refs/tags/0.0.1", None, None),
    ("commit_comment", "created.payload.json", None, None, PUSHED),
    ("page_build", "payload.json", None, None, PAGES),
    ("code_scanning_alert", "created.payload.json", "refs/heads/code-feature", "code-feature", ALERTED),
]  # fmt: skip


@pytest.mark.parametrize(("event", "sample", "ref", "branch", "sha"), COMMITS, ids=[c[0] for c in COMMITS])
def test_each_event_names_its_commit(event, sample, ref, branch, sha):
    """Each event's ref, branch and sha come from where GitHub puts them in its recorded payload."""
    info = event_info(event, "d", load(event, sample))
    assert (info.ref, info.branch, info.sha) == (ref, branch, sha)


def test_check_run_branch_is_its_suites():
    """A check run has no head_branch of its own: the branch is its check suite's."""
    payload = load("check_run", "created.payload.json")
    assert "head_branch" not in payload["check_run"]
    assert event_info("check_run", "d", payload).branch == payload["check_run"]["check_suite"]["head_branch"]


def test_status_branch_is_one_the_commit_heads():
    """A status names the branch whose head is its commit; a commit only contained in branches has none."""
    payload = load("status", "payload.json")  # recorded: the commit heads none of the listed branches
    assert event_info("status", "d", payload).branch is None
    payload["branches"][1]["commit"]["sha"] = payload["sha"]  # derived: "changes" now points at it
    info = event_info("status", "d", payload)
    assert (info.ref, info.branch) == ("refs/heads/changes", "changes")


def test_release_of_a_sha_names_it():
    """A release whose target_commitish is a full sha names that commit; a branch name is no commit."""
    payload = load("release", "published.payload.json")
    payload["release"]["target_commitish"] = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"  # derived
    assert event_info("release", "d", payload).sha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"


def test_code_scanning_alert_on_a_pull_request_has_no_branch():
    """An alert on a pull request's merge ref (refs/pull/N/merge) keeps the ref but names no branch."""
    payload = load("code_scanning_alert", "created.payload.json")
    payload["ref"] = "refs/pull/11/merge"  # derived: as in octokit's fixed.payload.json
    info = event_info("code_scanning_alert", "d", payload)
    assert (info.ref, info.branch) == ("refs/pull/11/merge", None)
