"""Run-log records for the unit tests: one run (``RUN``) of two stages, ``a`` then ``b``, record by record,
as the agents write them; times count in seconds from ``T0``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hamster import ids
from hamster.intake.github_events import EventInfo
from hamster.runs.events import (
    LeaseRenewed,
    RunRequested,
    StageFailed,
    StagesSkipped,
    StageStarted,
    StageSucceeded,
)

RUN = ids.run_id("delivery", "sub")


def requested(pipeline=("a", "b")):
    return RunRequested(
        event_id="e1",
        run_id=RUN,
        seq=1,
        subscriber="sub",
        subscriber_version="v1",
        pipeline=pipeline,
        event=EventInfo(name="push", delivery_id="delivery"),
    )


def started(seq, index, attempt=1, stage=None, **fields):
    return StageStarted(
        event_id=f"e{seq}",
        run_id=RUN,
        seq=seq,
        stage=stage or "ab"[index],
        index=index,
        attempt=attempt,
        **fields,
    )


def succeeded(seq, index, attempt=1, output=None):
    return StageSucceeded(
        event_id=f"e{seq}",
        run_id=RUN,
        seq=seq,
        stage="ab"[index],
        index=index,
        attempt=attempt,
        output=output,
        duration_ms=1.0,
    )


def failed(seq, index, attempt=1, retrying=False, **fields):
    return StageFailed(
        event_id=f"e{seq}",
        run_id=RUN,
        seq=seq,
        stage="ab"[index],
        index=index,
        attempt=attempt,
        error_type="E",
        message="m",
        duration_ms=1.0,
        retrying=retrying,
        **fields,
    )


def skip(seq, indexes, because="a"):
    return StagesSkipped(
        event_id=f"e{seq}",
        run_id=RUN,
        seq=seq,
        stages=tuple("ab"[i] for i in indexes),
        indexes=indexes,
        because=because,
        reason=f"stage {because} failed",
    )


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def renewed(seq, index, attempt, until_s, worker="w1", occurred_s=0.0, released=False):
    return LeaseRenewed(
        event_id=f"l{seq}-{until_s}",
        run_id=RUN,
        seq=seq,
        stage="ab"[index],
        index=index,
        attempt=attempt,
        until=at(until_s),
        released=released,
        worker=worker,
        occurred_at=at(occurred_s),
    )


def claimed(seq, index, attempt, when_s, worker="w1", lease_s=30.0):
    return started(seq, index, attempt, lease_s=lease_s, worker=worker, occurred_at=at(when_s))
