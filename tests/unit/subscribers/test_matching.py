"""Matching subscribers against events: pure filters."""

from __future__ import annotations

from hamster import Subscriber, task
from hamster.intake.github_events import event_info
from hamster.subscribers.matching import SubscriberIndex, glob_match, matches
from tests.samples import branch_push, load, with_repo


@task
def noop(ctx):
    return None


def spec(**filters):
    filters.setdefault("events", ["pull_request"])
    return Subscriber("s", pipeline=[noop], **filters).spec


PR = event_info("pull_request", "d", with_repo(load("pull_request", "opened.payload.json"), "acme/widgets"))
PUSH = event_info("push", "d", branch_push("main", ("src/app.py",)))


def test_globs_follow_github_filter_patterns():
    """* stays within a path segment, ** crosses segments."""
    assert glob_match("release/1.0", ["release/*"])
    assert not glob_match("release/1.0/hotfix", ["release/*"])
    assert glob_match("src/a/b.py", ["src/**"])
    assert glob_match("acme/widgets", ["acme/*"])
    assert not glob_match("other/widgets", ["acme/*"])


def test_fields_left_out_match_anything():
    """A subscriber with only events matches every event of that name."""
    assert matches(spec(), PR)
    assert not matches(spec(), PUSH)


def test_or_within_and_across_fields():
    """Values within a field are alternatives; every field given must hold."""
    assert matches(spec(actions=["closed", "opened"], repos=["acme/*"]), PR)
    assert not matches(spec(actions=["opened"], repos=["other/*"]), PR)
    assert not matches(spec(actions=["closed"], repos=["acme/*"]), PR)


def test_branches_use_the_pull_request_base_branch():
    """For pull_request, branches filters the base branch."""
    base = PR.branch
    assert base
    assert matches(spec(branches=[base]), PR)
    assert not matches(spec(branches=["nope"]), PR)


def test_tag_pushes_do_not_match_branches():
    """A tag push never matches a branches filter, even '**'."""
    tag = event_info("push", "d", load("push", "1.payload.json"))  # recorded: refs/tags/simple-tag
    assert not matches(spec(events=["push"], branches=["**"]), tag)
    assert matches(spec(events=["push"]), tag)


def test_paths_filter_on_push_files():
    """paths matches the files a push changed; an event that lists no files is not excluded."""
    files = PUSH.changed_paths
    assert files
    assert matches(spec(events=["push"], paths=[files[0]]), PUSH)
    assert not matches(spec(events=["push"], paths=["nothing/**"]), PUSH)
    assert matches(spec(paths=["nothing/**"]), PR)


def test_labels_and_commands():
    """labels needs one of the labels; commands needs a comment starting with one of them."""
    labeled = event_info("pull_request", "d", load("pull_request", "labeled.payload.json"))
    assert labeled.labels
    assert matches(spec(labels=[labeled.labels[0], "x"]), labeled)
    assert not matches(spec(labels=["x"]), labeled)
    comment = load("issue_comment", "created.payload.json")
    comment["comment"]["body"] = "/retest please"
    info = event_info("issue_comment", "d", comment)
    assert matches(spec(events=["issue_comment"], commands=["/retest"]), info)
    assert not matches(spec(events=["issue_comment"], commands=["/deploy"]), info)
    assert not matches(spec(commands=["/retest"]), PR)


def test_when_predicate():
    """The when predicate decides last; one that raises does not match."""

    def boom(event):
        raise RuntimeError("no")

    assert matches(spec(when=lambda e: e.action == "opened"), PR, lambda e: e.action == "opened")
    assert not matches(spec(when=lambda e: False), PR, lambda e: False)
    assert not matches(spec(when=boom), PR, boom)


def test_index_returns_every_match_in_name_order():
    """The index finds the same subscribers as checking each, including '*' subscribers."""
    subs = [
        Subscriber(f"s{i}", events=["push" if i % 2 else "pull_request"], pipeline=[noop]) for i in range(10)
    ]
    subs.append(Subscriber("all", events=["*"], pipeline=[noop]))
    index = SubscriberIndex(s.spec for s in subs)
    found = [s.name for s in index.match(PR)]
    assert found == sorted(s.name for s in subs if matches(s.spec, PR))
    assert "all" in found and "s1" not in found


def test_index_by_repository_finds_what_checking_each_finds():
    """Filing subscribers by repository name and owner loses no match, whatever the pattern's shape."""
    patterns = [None, ["acme/widgets"], ["acme/*"], ["acme/wid*"], ["*/widgets"], ["**"], ["acme/other"],
                ["other/*"], ["acme/widgets", "other/x"], ["ac*/widgets"]]  # fmt: skip
    subs = [
        Subscriber(f"r{i}-{j}", events=[event], repos=repos, pipeline=[noop])
        for i, repos in enumerate(patterns)
        for j, event in enumerate(("pull_request", "*", "push"))
    ]
    index = SubscriberIndex(s.spec for s in subs)
    no_repo = event_info("pull_request", "d", {"action": "opened"})
    for event in (PR, PUSH, no_repo, event_info("pull_request", "d", with_repo(PR.payload, "other/x"))):
        assert [s.name for s in index.match(event)] == sorted(s.name for s in subs if matches(s.spec, event))


def test_environments_filter_deployments():
    """environments matches a deployment's environment (globs as elsewhere); an event without one never."""
    deployment = event_info("deployment", "d", load("deployment", "payload.json"))  # recorded: production
    assert deployment.environment == "production"
    assert matches(spec(events=["deployment"], environments=["staging", "production"]), deployment)
    assert matches(spec(events=["deployment"], environments=["prod*"]), deployment)
    assert not matches(spec(events=["deployment"], environments=["staging"]), deployment)
    assert not matches(spec(events=["push"], environments=["**"]), PUSH)
    assert matches(spec(events=["push"]), PUSH)


def test_environments_filter_deployment_statuses_by_their_environment():
    """A deployment_status passes an environments filter by the environment its status names."""
    payload = load("deployment_status", "payload.json")
    payload["deployment_status"]["environment"] = "staging"  # derived: recorded in production
    status = event_info("deployment_status", "d", payload)
    assert matches(spec(events=["deployment_status"], environments=["staging"]), status)
    assert not matches(spec(events=["deployment_status"], environments=["production"]), status)
