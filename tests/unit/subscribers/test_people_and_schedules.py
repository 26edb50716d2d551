"""Events Hamster makes itself (manual runs, schedule ticks), schedules' arithmetic, and approval commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hamster import Subscriber, task
from hamster.errors import ConfigurationError
from hamster.intake.github_events import EventInfo, event_info
from hamster.runs.approvals import command_of, may_decide
from hamster.subscribers.dispatch import manual_event, params_of, schedule_event, target_of
from hamster.subscribers.matching import SubscriberIndex
from hamster.subscribers.schedules import first_round, latest, ticks

T = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SHA = "5e" * 20


@task
def nightly(ctx):
    return None


def info(envelope):
    return event_info(envelope.event, envelope.delivery_id, envelope.payload)


def test_a_manual_event_names_its_subscriber_commit_and_params():
    """The workflow_dispatch-like event: its branch, resolved sha and params; it targets one subscriber."""
    event = info(manual_event("nightly-build", "acme/app", "main", SHA, {"python": "3.13"}, "ada"))
    assert (event.name, event.repo, event.branch, event.sha, event.sender) == (
        "workflow_dispatch",
        "acme/app",
        "main",
        SHA,
        "ada",
    )
    assert target_of(event) == "nightly-build" and params_of(event) == {"python": "3.13"}


def test_a_targeted_event_matches_only_its_subscriber_whatever_its_filters():
    """Filters are bypassed for the subscriber named, and no other subscriber matches."""
    named = Subscriber("named", events=["push"], repos=["other/repo"], pipeline=[nightly]).spec
    other = Subscriber("other", events=["workflow_dispatch"], pipeline=[nightly]).spec
    event = info(manual_event("named", "acme/app", "main", SHA, {}, "ada"))
    assert [s.name for s in SubscriberIndex([named, other]).match(event)] == ["named"]
    assert SubscriberIndex([other]).match(event) == []  # named is disabled or unknown: nothing runs
    github_own = EventInfo(name="workflow_dispatch", delivery_id="d", payload={"ref": "refs/heads/main"})
    assert target_of(github_own) is None


def test_a_tick_has_the_same_delivery_id_from_every_worker():
    """Same subscriber, repository, branch and tick: same delivery id; another tick: another id."""
    one = schedule_event("s", "acme/app", "main", T, "0 3 * * *")
    assert one.delivery_id == schedule_event("s", "acme/app", "main", T, "0 3 * * *").delivery_id
    assert (
        one.delivery_id
        != schedule_event("s", "acme/app", "main", T + timedelta(days=1), "0 3 * * *").delivery_id
    )
    assert target_of(info(one)) == "s" and info(one).branch == "main"


def test_ticks_and_catch_up():
    """Ticks in a window; the first round catches up only the latest few missed, and none the redelivery
    filter would have forgotten."""
    assert ticks("0 3 * * *", T - timedelta(days=2), T) == [
        datetime(2026, 11, 29, 3, tzinfo=UTC),
        datetime(2026, 11, 30, 3, tzinfo=UTC),
    ]
    assert latest("* * * * *", T - timedelta(days=1), T, 2) == [T - timedelta(minutes=1), T]
    started = T - timedelta(seconds=30)
    minute = timedelta(minutes=1)
    assert first_round("* * * * *", T, started, 3, 86400, timedelta(days=3)) == [
        T - 3 * minute,
        T - 2 * minute,
        T - minute,
        T,
    ]
    assert first_round("* * * * *", T, started, 0, 86400, timedelta(days=3)) == [T]
    # Down a week with a daily schedule: the filter remembers three days, so no older tick is caught up.
    week_down = first_round("0 3 * * *", T, T, 5, 30 * 86400, timedelta(days=3))
    assert week_down == [datetime(2026, 11, d, 3, tzinfo=UTC) for d in (28, 29, 30)]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"schedule": "every night", "repos": ["a/b"], "branches": ["main"]}, "not a cron expression"),
        ({"schedule": "0 3 * * *", "repos": ["a/*"], "branches": ["main"]}, "without wildcards"),
        ({"schedule": "0 3 * * *", "repos": ["a/b"]}, "needs repos and branches"),
    ],
)
def test_a_schedule_needs_a_cron_and_literal_repos_and_branches(fields, says):
    """Every tick runs on named repositories and branches: no wildcards, no missing ones."""
    with pytest.raises(ConfigurationError, match=says):
        Subscriber("s", pipeline=[nightly], **fields)


def test_only_new_pr_comments_starting_with_approve_or_deny_are_commands():
    """``/approve`` and ``/deny`` on a pull request decide; an edit, an issue or other words do not."""

    def comment(body, action="created", pr=7):
        return EventInfo(name="issue_comment", action=action, delivery_id="d", comment=body, pr_number=pr)

    assert command_of(comment("/approve")) == "approve"
    assert command_of(comment("/deny  not today")) == "deny"
    assert command_of(comment("/approve", action="edited")) is None
    assert command_of(comment("/approve", pr=None)) is None
    assert command_of(comment("please /approve")) is None
    assert may_decide("admin") and may_decide("write") and not may_decide("read") and not may_decide("none")
