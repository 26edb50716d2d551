"""Forks: which runs are trusted, who may vouch with /ok-to-test, and the event that vouching starts."""

from __future__ import annotations

import copy

from hamster.github.forks import decide, is_ok_to_test, may_vouch, ok_to_test_event, refusal, vouched
from hamster.github.reporting import is_own_comment
from hamster.intake.github_events import event_info
from tests.samples import from_fork, load

SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # the head sha of the recorded pull_request payload


def info(payload, event="pull_request", delivery="d-1"):
    return event_info(event, delivery, payload)


def test_a_pull_request_from_the_same_repository_is_trusted():
    """Head and base in one repository: trusted, and the record says why."""
    trust = decide(info(load("pull_request", "opened.payload.json")), trust_forks=False)
    assert trust.trusted and trust.reason == "not-a-fork" and trust.head_repo == "Codertocat/Hello-World"


def test_a_forks_pull_request_is_not_trusted_unless_the_subscriber_opts_in():
    """Head in another repository: untrusted, naming the fork; trust_forks=True trusts it, saying so."""
    event = info(from_fork(load("pull_request", "opened.payload.json"), "mallory"))
    trust = decide(event, trust_forks=False)
    assert not trust.trusted and trust.reason == "fork" and trust.head_repo == "mallory/Hello-World"
    opted = decide(event, trust_forks=True)
    assert opted.trusted and opted.reason == "trust-forks"


def test_a_pull_request_whose_head_repository_is_gone_is_not_trusted():
    """A deleted fork (head.repo null) cannot be told from anyone's code: untrusted."""
    payload = load("pull_request", "opened.payload.json")
    payload["pull_request"]["head"]["repo"] = None
    trust = decide(info(payload), trust_forks=False)
    assert not trust.trusted and trust.head_repo is None


def test_events_that_are_no_pull_request_are_trusted():
    """A push (code already in the repository) is trusted."""
    assert decide(info(load("push", "1.payload.json"), "push"), trust_forks=False).trusted


def comment(body, action="created"):
    payload = copy.deepcopy(load("issue_comment", "created.payload.json"))
    payload["action"] = action
    payload["comment"]["body"] = body
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
    return info(payload, "issue_comment", "comment-delivery")


def test_ok_to_test_is_a_new_pull_request_comment_starting_with_the_command():
    """Only a created comment on a pull request whose first word is /ok-to-test."""
    assert is_ok_to_test(comment("/ok-to-test"))
    assert is_ok_to_test(comment("/ok-to-test\nlooks fine"))
    assert not is_ok_to_test(comment("please /ok-to-test"))
    assert not is_ok_to_test(comment("/ok-to-test", action="edited"))
    plain_issue = load("issue_comment", "created.payload.json")
    plain_issue["comment"]["body"] = "/ok-to-test"
    plain_issue["issue"].pop("pull_request", None)
    assert not is_ok_to_test(info(plain_issue, "issue_comment"))


def test_only_writers_may_vouch_and_others_are_told_why():
    """admin and write may (maintain shows as write); triage (read) and none may not. The refusal is a
    comment of Hamster's own, so it starts nothing itself."""
    assert may_vouch("admin") and may_vouch("write")
    assert not may_vouch("read") and not may_vouch("none")
    body = refusal("mallory", "acme/app", "read")
    assert "@mallory" in body and "(yours: read)" in body
    own = copy.deepcopy(load("issue_comment", "created.payload.json"))
    own["comment"]["body"] = body
    assert is_own_comment(info(own, "issue_comment"))


def test_the_vouched_event_is_the_pull_requests_head_now_and_trusted_for_that_commit_only():
    """/ok-to-test makes a pull_request event of the pull request as GitHub gives it now, naming who
    vouched for which commit; its runs are trusted; the same payload for another commit is not; a
    redelivered comment makes the same delivery id."""
    pr = from_fork(load("pull_request", "opened.payload.json"), "mallory")["pull_request"]
    vouching = comment("/ok-to-test")
    envelope = ok_to_test_event(vouching, pr)
    assert envelope.event == "pull_request" and envelope.payload["action"] == "synchronize"
    assert ok_to_test_event(vouching, pr).delivery_id == envelope.delivery_id
    started = info(envelope.payload, delivery=envelope.delivery_id)
    assert (
        started.sha == SHA and started.pr_number == pr["number"] and started.repo == "Codertocat/Hello-World"
    )
    assert vouched(started) == "Codertocat"
    trust = decide(started, trust_forks=False)
    assert trust.trusted and trust.reason == "ok-to-test" and trust.by == "Codertocat"
    later = copy.deepcopy(envelope.payload)
    later["pull_request"]["head"]["sha"] = "f" * 40
    assert not decide(info(later), trust_forks=False).trusted
