"""Replay decisions without a broker: selecting recorded webhooks, replay envelopes, dry runs, reruns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hamster import Subscriber, ids, task
from hamster.errors import ConfigurationError
from hamster.intake.envelope import EventEnvelope
from hamster.intake.github_events import EventInfo
from hamster.runs.events import RunRequested
from hamster.runs.lifecycle import evolve, fold
from hamster.runs.replay import (
    REPORT_HEADER,
    EventFilter,
    dry_run,
    parse_time,
    replay_reports,
    replayed,
    rerun,
    retention_warning,
    select_events,
    stage_index,
    started_by_delivery,
)
from tests.unit.runs.records import RUN, failed, requested, started, succeeded

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def envelope(
    repo="acme/app", event="push", action=None, hours_ago=1.0, delivery=None, replay_of=None
) -> EventEnvelope:
    payload = {"repository": {"full_name": repo}, "ref": "refs/heads/main"}
    if action:
        payload["action"] = action
    return EventEnvelope(
        delivery_id=delivery or str(uuid.uuid4()),
        event=event,
        action=action,
        repository=repo,
        key=repo,
        sender=None,
        installation_id=None,
        received_at=NOW - timedelta(hours=hours_ago),
        payload=payload,
        replay_of=replay_of,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("90m", NOW - timedelta(minutes=90)),
        ("30s", NOW - timedelta(seconds=30)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-11-20T08:00:00Z", datetime(2026, 11, 20, 8, tzinfo=UTC)),
        ("2026-11-20T08:00:00", datetime(2026, 11, 20, 8, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
    ],
)
def test_times_are_iso_or_relative(text, expected):
    """--since/--until take an ISO time or a time ago."""
    assert parse_time(text, NOW) == expected


def test_a_bad_time_is_a_clear_error():
    """Something that is neither form names itself in the error."""
    with pytest.raises(ConfigurationError, match="'yesterday'"):
        parse_time("yesterday", NOW)


def test_filter_selects_by_time_repo_event_action():
    """Every filter narrows the selection; repos are globs; until is exclusive."""
    old, recent = envelope(hours_ago=10), envelope(hours_ago=1)
    other = envelope(repo="acme/lib", event="pull_request", action="opened", hours_ago=1)
    closed = envelope(repo="acme/lib", event="pull_request", action="closed", hours_ago=1)
    items = [old, recent, other, closed]
    assert list(select_events(items, EventFilter(since=NOW - timedelta(hours=2)))) == [recent, other, closed]
    assert list(select_events(items, EventFilter(until=NOW - timedelta(hours=1)))) == [old]
    assert list(select_events(items, EventFilter(repos=("acme/l*",)))) == [other, closed]
    assert list(select_events(items, EventFilter(events=("push",)))) == [old, recent]
    assert list(select_events(items, EventFilter(actions=("opened",)))) == [other]
    assert list(select_events(items, EventFilter(deliveries=(old.delivery_id, closed.delivery_id)))) == [
        old,
        closed,
    ]


def test_selection_skips_redeliveries_and_earlier_replays():
    """A delivery is selected once; replays are left out unless named by delivery id."""
    first = envelope()
    again = first.model_copy()
    copy = replayed(first, NOW)
    assert list(select_events([first, again, copy], EventFilter())) == [first]
    assert list(select_events([first, copy], EventFilter(deliveries=(copy.delivery_id,)))) == [copy]


def test_a_replay_has_a_new_delivery_id_linked_to_the_original():
    """The replay id is new; replay_of names the first original, even when replaying a replay."""
    original = envelope()
    copy = replayed(original, NOW)
    assert copy.delivery_id != original.delivery_id
    assert copy.replay_of == original.delivery_id
    assert copy.payload == original.payload and copy.key == original.key
    assert replayed(copy, NOW).replay_of == original.delivery_id


def test_report_header_allows_reporting_only_when_set():
    """Replayed runs report to GitHub only with the header set to 1 (Faust gives a list or a mapping)."""
    assert replay_reports([(REPORT_HEADER, b"1")])
    assert replay_reports({REPORT_HEADER: b"1"})
    assert not replay_reports([(REPORT_HEADER, b"0")])
    assert not replay_reports(None)
    assert not replay_reports([])


@task
def build(ctx):
    return None


def test_dry_run_lists_new_gone_and_same():
    """A changed subscriber set is compared with what did start, delivery by delivery."""
    push, pr = envelope(), envelope(event="pull_request", action="opened")
    specs = [
        Subscriber("on-push", events=["push"], pipeline=[build]).spec,
        Subscriber("on-pr", events=["pull_request"], pipeline=[build]).spec,
    ]
    started = {push.delivery_id: {"on-push", "old-one"}}
    result = dry_run([push, pr], specs, {}, started)
    assert result.events == 2
    assert [(r.delivery_id, r.subscriber) for r in result.of("new")] == [(pr.delivery_id, "on-pr")]
    assert [(r.delivery_id, r.subscriber) for r in result.of("gone")] == [(push.delivery_id, "old-one")]
    assert [(r.delivery_id, r.subscriber) for r in result.of("same")] == [(push.delivery_id, "on-push")]


def test_dry_run_uses_when_predicates():
    """A subscriber's ``when`` predicate decides in a dry run as it does in the match agent."""
    push = envelope()
    spec = Subscriber("picky", events=["push"], pipeline=[build], when=lambda e: False).spec
    assert dry_run([push], [spec], {"picky": lambda e: False}, {}).rows == ()
    assert len(dry_run([push], [spec], {"picky": lambda e: True}, {}).of("new")) == 1


def test_reruns_are_not_counted_as_starts():
    """What a delivery started comes from RunRequested records, leaving out reruns of runs."""
    original = requested()
    again = original.model_copy(update={"run_id": "r2", "original_run_id": RUN, "attempt": 2})
    from_replay = original.model_copy(
        update={
            "run_id": "r3",
            "original_run_id": "x",
            "replay_of": "d0",
            "subscriber": "other",
        }
    )
    assert started_by_delivery([original, again, from_replay]) == {"delivery": {"sub", "other"}}


def test_retention_warning_only_when_records_were_deleted():
    """A range older than the oldest record held is reported, with the retention setting."""
    oldest = NOW - timedelta(days=30)
    message = retention_warning(NOW - timedelta(days=40), oldest, True, 30)
    assert message is not None and "30 days" in message and "HAMSTER_RETENTION_DAYS" in message
    assert retention_warning(NOW - timedelta(days=40), oldest, False, 30) is None  # nothing deleted yet
    assert retention_warning(NOW - timedelta(days=2), oldest, True, 30) is None
    assert retention_warning(None, oldest, True, 30) is None


def test_stage_index_takes_a_name_or_a_number():
    """--from-stage names a stage or gives its 1-based position."""
    assert stage_index(("a", "b", "c"), None) == 0
    assert stage_index(("a", "b", "c"), "b") == 1
    assert stage_index(("a", "b", "c"), "3") == 2
    with pytest.raises(ConfigurationError, match="no stage 'd'"):
        stage_index(("a", "b", "c"), "d")
    with pytest.raises(ConfigurationError):
        stage_index(("a", "b", "c"), "4")


def failed_run():
    original = requested().model_copy(update={"events_offset": (1, 7)})
    return original, fold(
        [original, started(2, 0), succeeded(3, 0, output={"x": 1}), started(4, 1), failed(5, 1)]
    )


def test_rerun_from_a_stage_reuses_earlier_outputs():
    """A rerun from stage 2 carries stage 1's recorded output and is the next attempt, not reporting."""
    original, state = failed_run()
    new = rerun(original, state, 1, attempts=[1])
    assert new.original_run_id == RUN and new.attempt == 2 and new.replay and not new.report
    assert new.start_index == 1 and new.reused_outputs == {"a": {"x": 1}}
    assert new.events_offset == (1, 7) and new.pipeline == original.pipeline
    assert new.run_id == ids.run_id("delivery", "sub", replay_id=f"{RUN}#2")
    folded = evolve(None, new)
    assert [(s.status, s.reused) for s in folded.stages] == [("succeeded", True), ("pending", False)]
    assert folded.next_index() == 1 and folded.outputs() == {"a": {"x": 1}}


def test_rerun_attempts_count_across_earlier_reruns():
    """Rerunning a rerun links to the first run and takes the attempt after the highest so far."""
    original, state = failed_run()
    second = rerun(original, state, 0, attempts=[1])
    third = rerun(second, evolve(None, second), 0, attempts=[1, 2])
    assert (third.original_run_id, third.attempt) == (RUN, 3)
    assert len({original.run_id, second.run_id, third.run_id}) == 3


def test_rerun_cannot_reuse_a_stage_that_did_not_succeed():
    """Starting past a stage that failed is refused: there is no output to reuse."""
    original = requested(pipeline=("a", "b", "c"))
    state = fold([original, started(2, 0), succeeded(3, 0), started(4, 1), failed(5, 1)])
    with pytest.raises(ConfigurationError, match="stage b did not succeed"):
        rerun(original, state, 2, attempts=[])


def test_rerun_with_report_reports():
    """--report lets the rerun report to GitHub."""
    original, state = failed_run()
    assert rerun(original, state, 0, attempts=[], report=True).report


def test_a_rerun_request_is_plain_run_requested():
    """The rerun travels as an ordinary RunRequested (JSON round trip keeps every replay field)."""
    original, state = failed_run()
    new = rerun(original, state, 1, attempts=[])
    assert RunRequested.model_validate_json(new.model_dump_json()) == new
    assert new.event == EventInfo(name="push", delivery_id="delivery")


def test_a_rerun_asked_by_a_webhook_is_named_after_its_delivery():
    """A Re-run webhook delivered again lands on the same rerun, even once that rerun is logged (the
    attempt moved on) or is itself what the webhook asks to rerun; another delivery is another rerun."""
    original, state = failed_run()
    first = rerun(original, state, 1, attempts=[1], delivery_id="gh-1")
    assert rerun(original, state, 1, attempts=[1, 2], delivery_id="gh-1").run_id == first.run_id
    assert rerun(first, evolve(None, first), 0, attempts=[1, 2], delivery_id="gh-1").run_id == first.run_id
    assert rerun(original, state, 1, attempts=[1, 2], delivery_id="gh-2").run_id != first.run_id
    assert first.run_id != rerun(original, state, 1, attempts=[1]).run_id  # the CLI's: by attempt
    assert (first.original_run_id, first.attempt) == (RUN, 2)


def test_records_ruled_out_by_headers_key_and_time_are_never_selected():
    """What the header pre-check rejects the full filter rejects too; what it lets through is decided on
    the decoded envelope."""
    from itertools import product

    from hamster.intake.envelope import kafka_headers
    from hamster.runs.replay import replay_headers

    items = [
        envelope(),
        envelope(repo="acme/lib", event="pull_request", action="opened", hours_ago=5),
        envelope(repo="other/x", event="issues", hours_ago=0.5),
        replayed(envelope(repo="acme/lib"), NOW - timedelta(minutes=10)),
    ]
    filters = [
        EventFilter(),
        EventFilter(since=NOW - timedelta(hours=2)),
        EventFilter(repos=("acme/*",)),
        EventFilter(events=("pull_request", "issues")),
        EventFilter(deliveries=(items[3].delivery_id,)),
        EventFilter(deliveries=(items[1].delivery_id,), repos=("other/*",)),
    ]
    rejected = 0
    for item, selection in product(items, filters):
        headers = kafka_headers(item) + (replay_headers(False) if item.replay_of else [])
        stamp = int(item.received_at.timestamp() * 1000) + 5  # stamped just after it was received
        if selection.rejects_record(headers, item.key.encode(), stamp):
            rejected += 1
            assert not selection.selects(item), (item, selection)
    assert rejected >= 12  # the pre-check does rule records out
    assert EventFilter().rejects_record(kafka_headers(items[3]) + replay_headers(False), b"acme/lib", None)
    assert not EventFilter().rejects_record(kafka_headers(items[0]), b"acme/app", None)


def test_a_start_read_from_json_is_what_started_by_delivery_counts():
    """start_in (the dry run's fast path over the run log's JSON) agrees with started_by_delivery."""
    import json

    from hamster.runs.replay import start_in

    original = requested()
    again = original.model_copy(update={"run_id": "r2", "original_run_id": RUN, "attempt": 2})
    from_replay = original.model_copy(
        update={"run_id": "r3", "original_run_id": "x", "replay_of": "d0", "subscriber": "other"}
    )
    records = [original, again, from_replay]
    starts: dict[str, set[str]] = {}
    for record in records:
        found = start_in(json.loads(record.model_dump_json()))
        if found:
            starts.setdefault(found[0], set()).add(found[1])
    assert starts == started_by_delivery(records)
    assert start_in({"type": "StageStarted"}) is None and start_in({"type": "RunRequested"}) is None


def test_a_record_counted_without_decoding_would_have_given_no_rows():
    """nothing_to_match: only when the filter is header-only, nobody listens to the event and its delivery
    started nothing; then the full dry run agrees (selected, no rows). Manual runs are always decoded."""
    from hamster.intake.envelope import kafka_headers
    from hamster.runs.replay import nothing_to_match

    specs = [Subscriber("on-pr", events=["pull_request"], pipeline=[build]).spec]
    push, pr, issue = envelope(), envelope(event="pull_request", action="opened"), envelope(event="issues")
    manual = envelope(event="workflow_dispatch")
    started = {issue.delivery_id: {"old-one"}}
    decided = {
        e.delivery_id: nothing_to_match(EventFilter(), specs, started, kafka_headers(e))
        for e in (push, pr, issue, manual)
    }
    assert decided == {push.delivery_id: True, pr.delivery_id: False, issue.delivery_id: False,
                       manual.delivery_id: False}  # fmt: skip
    assert dry_run([push], specs, {}, started).rows == () and EventFilter().selects(push)
    assert not nothing_to_match(EventFilter(since=NOW), specs, {}, kafka_headers(push))
    assert not nothing_to_match(EventFilter(repos=("acme/*",)), specs, {}, kafka_headers(push))
    anything = [Subscriber("all", events=["*"], pipeline=[build]).spec]
    assert not nothing_to_match(EventFilter(), anything, {}, kafka_headers(push))
