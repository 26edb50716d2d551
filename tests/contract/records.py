"""Run-log records for the contract suite: whole runs, built the way the agents write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hamster import ids
from hamster.intake.github_events import EventInfo
from hamster.runs.events import (
    RunEvent,
    RunFailed,
    RunRequested,
    RunSucceeded,
    StageFailed,
    StageStarted,
    StageSucceeded,
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def run_records(
    delivery: str,
    subscriber: str = "ci",
    repo: str = "acme/app",
    outcome: str = "succeeded",
    start: datetime = T0,
    pr_number: int | None = 7,
) -> tuple[str, list[RunEvent]]:
    """(run id, records) of a two-stage run: lint then test; ``test`` fails when ``outcome`` is failed."""
    run_id = ids.run_id(delivery, subscriber)
    at = [start + timedelta(seconds=s) for s in range(8)]
    common = {"run_id": run_id}
    event = EventInfo(
        name="pull_request",
        action="opened",
        repo=repo,
        delivery_id=delivery,
        sha="a" * 40,
        pr_number=pr_number,
    )
    records: list[RunEvent] = [
        RunRequested(
            event_id=ids.event_id(run_id, 1),
            seq=1,
            occurred_at=at[0],
            subscriber=subscriber,
            subscriber_version="v1",
            pipeline=("lint", "test"),
            event=event,
            **common,
        ),
        StageStarted(event_id="2", seq=2, occurred_at=at[1], stage="lint", index=0, attempt=1, **common),
        StageSucceeded(
            event_id="3",
            seq=3,
            occurred_at=at[2],
            stage="lint",
            index=0,
            attempt=1,
            output={"warnings": 0, "log": "checking\n" + "line\n" * 30 + "all clean\n"},
            duration_ms=1000.0,
            **common,
        ),
        StageStarted(event_id="4", seq=4, occurred_at=at[3], stage="test", index=1, attempt=1, **common),
    ]
    if outcome == "succeeded":
        records += [
            StageSucceeded(
                event_id="5",
                seq=5,
                occurred_at=at[5],
                stage="test",
                index=1,
                attempt=1,
                output={"passed": 12},
                duration_ms=2000.0,
                **common,
            ),
            RunSucceeded(event_id="6", seq=6, occurred_at=at[6], **common),
        ]
    elif outcome == "failed":
        records += [
            StageFailed(
                event_id="5",
                seq=5,
                occurred_at=at[5],
                stage="test",
                index=1,
                attempt=1,
                error_type="AssertionError",
                message="3 tests failed",
                traceback="Traceback (most recent call last):\n  boom\nAssertionError",
                duration_ms=2000.0,
                **common,
            ),
            RunFailed(
                event_id="6", seq=6, occurred_at=at[6], stage="test", reason="test: 3 tests failed", **common
            ),
        ]
    return run_id, records


def batch(
    records: list[RunEvent], first_offset: int = 0, partition: int = 0
) -> list[tuple[int, int, RunEvent]]:
    return [(partition, first_offset + i, record) for i, record in enumerate(records)]
