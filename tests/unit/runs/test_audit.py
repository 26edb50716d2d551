"""The audit chain: sealing, verifying (breaks named by position), a run's records explained, subscriber
history."""

from __future__ import annotations

import json

import pytest

from hamster import Subscriber, task
from hamster.errors import InvalidTransition
from hamster.runs.audit import (
    Position,
    audit_rows,
    chain_hash,
    seal,
    seal_next,
    subscriber_history,
    verify,
)
from hamster.runs.events import encode_run_event
from hamster.runs.lifecycle import evolve
from hamster.subscribers.changes import SubscriberDisabled, SubscriberEnabled, SubscriberPublished
from tests.unit.runs.records import failed, requested, started, succeeded


def sealed_run():
    """A run's records as a worker writes them: each sealed onto the one before."""
    out, prev = [], ""
    for record in [requested(), started(2, 0), succeeded(3, 0, output={"x": 1}), started(4, 1), failed(5, 1)]:
        record = seal(record, prev)
        prev = record.hash
        out.append(record)
    return out


def stored(records, start=0):
    """The records as the run log holds them: JSON, with a position each."""
    return [
        (Position("ns.run-events", 0, start + i), json.loads(encode_run_event(r)))
        for i, r in enumerate(records)
    ]


def test_seal_chains_each_record_to_the_one_before():
    """A sealed record's hash covers its content and its predecessor's hash."""
    first, second, *_ = sealed_run()
    assert first.prev_hash == "" and len(first.hash) == 64
    assert second.prev_hash == first.hash
    assert second.hash == chain_hash(first.hash, second.model_dump(mode="json"))
    assert second.hash != chain_hash("", second.model_dump(mode="json"))


def test_seal_next_seals_a_record_onto_its_run_and_folds_it():
    """The next record is chained to the run's latest hash, and the state after it is the state machine's."""
    record = requested()
    first, state = seal_next(None, record)
    assert first.prev_hash == "" and first == seal(record, "")
    assert state == evolve(None, first)
    second, after = seal_next(state, started(2, 0))
    assert second.prev_hash == first.hash and after.seq == 2 and after.last_hash == second.hash


def test_seal_next_refuses_what_the_state_machine_refuses():
    """A record that does not fit the run raises before anything could be written."""
    _, state = seal_next(None, requested())
    with pytest.raises(InvalidTransition):
        seal_next(state, succeeded(3, 0))
    with pytest.raises(InvalidTransition):
        seal_next(None, started(1, 0))


def test_sealing_a_sealed_record_again_changes_nothing():
    """A rerun's RunRequested is sealed by the CLI and again by the worker's recorder: the same record."""
    once, _ = seal_next(None, requested())
    assert seal_next(None, once)[0] == once


def test_an_intact_log_verifies():
    """Records read back from their JSON verify, every run and record counted."""
    result = verify(stored(sealed_run()))
    assert result.ok and result.records == 5 and result.runs == 1 and result.unsealed == 0


def test_altered_content_breaks_that_record():
    """Changing a stored record's content is reported at its position, with expected and found hashes."""
    log = stored(sealed_run())
    log[2][1]["output"] = {"x": 2}
    result = verify(log)
    [only] = result.breaks
    assert not result.ok
    assert (only.position.offset, only.seq, only.found) == (2, 3, log[2][1]["hash"])
    assert only.expected == chain_hash(log[1][1]["hash"], log[2][1]) != only.found


def test_rehashing_an_altered_record_breaks_the_next():
    """Recomputing the altered record's hash only moves the break to the record after it."""
    log = stored(sealed_run())
    log[2][1]["output"] = {"x": 2}
    log[2][1]["hash"] = chain_hash(log[1][1]["hash"], log[2][1])
    [only] = verify(log).breaks
    assert only.position.offset == 3 and only.seq == 4


def test_an_altered_copy_appended_later_is_a_break():
    """A forged record written to the log after the real one is named by its own offset."""
    records = sealed_run()
    forged = records[2].model_copy(update={"output": {"x": 99}})
    result = verify([*stored(records), *stored([forged], start=5)])
    assert [b.position.offset for b in result.breaks] == [5]


def test_a_record_written_twice_is_not_a_break():
    """A worker that died between writing a record and updating its table writes it again: both chain."""
    records = sealed_run()
    rewritten = seal(succeeded(3, 0, output={"x": 1}), records[1].hash)
    again = seal(started(4, 1), rewritten.hash)
    assert verify(stored([*records[:3], rewritten, again])).ok


def test_a_missing_record_is_a_break():
    """A record whose predecessor is not in the log is reported."""
    records = sealed_run()
    [only] = verify(stored([records[0], records[2]])).breaks
    assert only.seq == 3 and "no record 2" in only.reason


def test_a_window_starting_inside_a_run_checks_what_it_holds():
    """With --since cutting into a run, its first record seen starts the chain; the rest is checked."""
    log = stored(sealed_run())[2:]
    assert verify(log).ok
    log[2][1]["message"] = "changed"
    assert [b.seq for b in verify(log).breaks] == [5]


def test_records_from_before_the_chain_are_counted_not_judged():
    """Records without a hash (older than the chain) do not fail the check."""
    result = verify(stored([requested(), started(2, 0)]))
    assert result.ok and result.unsealed == 2


def test_a_tampered_prev_hash_is_a_break():
    """A record claiming another predecessor is reported even when its own hash still matches."""
    log = stored(sealed_run())
    log[1][1]["prev_hash"] = "f" * 64
    [only] = verify(log).breaks
    assert only.seq == 2 and "prev_hash" in only.reason


def test_audit_rows_explain_each_record():
    """Each record gets its subscriber, delivery, worker and the digest of the stage's input or result."""
    rows = audit_rows([(p, r) for (p, _), r in zip(stored(sealed_run()), sealed_run(), strict=True)])
    assert [r.type for r in rows] == [
        "RunRequested",
        "StageStarted",
        "StageSucceeded",
        "StageStarted",
        "StageFailed",
    ]
    assert {(r.subscriber, r.subscriber_version, r.delivery_id) for r in rows} == {("sub", "v1", "delivery")}
    assert rows[1].input_digest and rows[3].input_digest
    assert rows[1].input_digest != rows[3].input_digest  # stage b saw stage a's output
    assert rows[2].output_digest and rows[4].error_digest and rows[4].output_digest is None
    assert [r.position.offset for r in rows] == [0, 1, 2, 3, 4]
    assert rows[2].duration_ms == 1.0 and rows[2].stage == "a" and rows[2].attempt == 1


@task
def t(ctx):
    return None


def test_subscriber_history_lists_what_changed():
    """History keeps real changes only, says which fields changed, and filters by name."""
    v1 = Subscriber("s", events=["push"], pipeline=[t]).spec
    v2 = Subscriber("s", events=["push", "pull_request"], pipeline=[t]).spec
    other = Subscriber("o", events=["push"], pipeline=[t]).spec
    changes = [
        SubscriberPublished(name="s", spec=v1),
        SubscriberPublished(name="o", spec=other),
        SubscriberPublished(name="s", spec=v1),  # a restart: no change
        SubscriberPublished(name="s", spec=v2),
        SubscriberDisabled(name="s"),
        SubscriberDisabled(name="s"),  # already disabled
        SubscriberEnabled(name="s"),
    ]
    history = subscriber_history(changes, "s")
    assert [(e.change, e.changed_fields, e.enabled) for e in history] == [
        ("SubscriberPublished", ("(new)",), True),
        ("SubscriberPublished", ("events",), True),
        ("SubscriberDisabled", ("enabled",), False),
        ("SubscriberEnabled", ("enabled",), True),
    ]
    assert [e.version for e in history[:2]] == [v1.version, v2.version]
    assert [e.name for e in subscriber_history(changes)].count("o") == 1
