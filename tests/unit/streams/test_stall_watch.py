"""The stall watch: which partitions it reads again, and when (``streams.stall_watch``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP

from hamster.metrics import Metrics
from streams.stall_watch import Position, StallWatch, positions, watch_stalls

EVENTS = TP("t.events", 3)
OTHER = TP("t.events", 1)


def stuck(committed: int = 207, end: int = 400, in_hand: bool = False) -> Position:
    return Position(committed, end, in_hand)


def test_a_commit_standing_still_behind_records_is_a_stall_once_it_stood_long_enough():
    """Committed offset unchanged with records behind it: reported after ``after_s``, with that offset."""
    watch = StallWatch(after_s=60)
    assert watch.stalled({EVENTS: stuck()}, now=0) == []
    assert watch.stalled({EVENTS: stuck()}, now=59) == []
    assert watch.stalled({EVENTS: stuck()}, now=60) == [(EVENTS, 207)]


def test_a_stall_reported_waits_again_before_it_is_reported_again():
    """After a report (and the read it causes) the partition gets ``after_s`` again to move on."""
    watch = StallWatch(after_s=60)
    watch.stalled({EVENTS: stuck()}, now=0)
    assert watch.stalled({EVENTS: stuck()}, now=60) == [(EVENTS, 207)]
    assert watch.stalled({EVENTS: stuck()}, now=100) == []
    assert watch.stalled({EVENTS: stuck()}, now=120) == [(EVENTS, 207)]


def test_a_commit_that_moves_restarts_the_wait():
    """A partition whose commit advanced is waited for afresh from its new offset."""
    watch = StallWatch(after_s=60)
    watch.stalled({EVENTS: stuck(207)}, now=0)
    assert watch.stalled({EVENTS: stuck(208)}, now=50) == []
    assert watch.stalled({EVENTS: stuck(208)}, now=100) == []
    assert watch.stalled({EVENTS: stuck(208)}, now=110) == [(EVENTS, 208)]


def test_no_stall_while_the_record_at_the_committed_offset_is_processed():
    """A slow record being processed is not a stall, and the wait starts when it is no longer in hand."""
    watch = StallWatch(after_s=60)
    watch.stalled({EVENTS: stuck()}, now=0)
    assert watch.stalled({EVENTS: stuck(in_hand=True)}, now=70) == []
    assert watch.stalled({EVENTS: stuck()}, now=80) == []
    assert watch.stalled({EVENTS: stuck()}, now=140) == [(EVENTS, 207)]


def test_a_partition_read_to_its_end_or_without_a_commit_or_end_is_no_stall():
    """Nothing behind the committed offset, no commit yet or no end known yet: nothing to read again."""
    watch = StallWatch(after_s=60)
    quiet = {
        EVENTS: Position(400, 400, False),
        OTHER: Position(None, 10, False),
        TP("t.events", 2): Position(5, None, False),
    }
    watch.stalled(quiet, now=0)
    assert watch.stalled(quiet, now=1000) == []


def test_a_partition_revoked_and_assigned_again_waits_afresh():
    """A partition no longer listed (revoked) is forgotten: back again, it gets ``after_s`` anew."""
    watch = StallWatch(after_s=60)
    watch.stalled({EVENTS: stuck(), OTHER: stuck()}, now=0)
    assert watch.stalled({OTHER: stuck()}, now=30) == []
    assert watch.stalled({EVENTS: stuck(), OTHER: stuck()}, now=60) == [(OTHER, 207)]
    assert watch.stalled({EVENTS: stuck(), OTHER: stuck()}, now=119) == []
    assert watch.stalled({EVENTS: stuck(), OTHER: stuck()}, now=120) == [(EVENTS, 207), (OTHER, 207)]


def _consumer(**overrides: Any) -> SimpleNamespace:
    """A Faust consumer reduced to what ``positions`` and the timer read; ``reread`` counts its calls."""
    rereads: list[str] = []

    async def record_reread() -> None:
        rereads.append("reread")

    def highwater(tp: TP) -> int:
        if tp == OTHER:
            raise KeyError(tp)  # the fetcher has not seen this partition's end yet
        return 400

    consumer = SimpleNamespace(
        _committed_offset={EVENTS: 207, OTHER: 3},
        unacked=[SimpleNamespace(tp=OTHER, offset=3), SimpleNamespace(tp=EVENTS, offset=300)],
        assignment=lambda: {EVENTS, OTHER, TP("t.run-events", 0)},
        highwater=highwater,
        flow_active=True,
        reread=record_reread,
        rereads=rereads,
    )
    consumer.__dict__.update(overrides)
    return consumer


def test_positions_are_the_consumers_commits_ends_and_records_in_hand_of_the_watched_topics():
    """Only the watched topics; the committed offset, the highwater (None when unknown), and whether the
    record at the committed offset is unacknowledged (taken by an agent)."""
    assert positions(_consumer(), {"t.events"}) == {
        EVENTS: Position(207, 400, False),
        OTHER: Position(3, None, True),
    }


class _Timers:
    """A Faust app reduced to its timer decorator: keeps the timer to call it by hand."""

    def __init__(self, consumer: SimpleNamespace) -> None:
        self.consumer = consumer
        self.rebalancing = False
        self.timers: list[Any] = []

    def timer(self, interval: float) -> Any:
        def register(fun: Any) -> Any:
            self.timers.append(fun)
            return fun

        return register


async def test_the_timer_reads_a_stalled_partition_again_and_counts_it():
    """A stall found is counted, labelled by partition, and the consumer reads from its commits again."""
    clock = iter([0.0, 100.0])
    consumer = _consumer()
    app, metrics = _Timers(consumer), Metrics()
    watch_stalls(app, ["t.events"], metrics, clock=lambda: next(clock))
    [find_stalls] = app.timers
    await find_stalls()
    assert consumer.rereads == []
    await find_stalls()
    assert consumer.rereads == ["reread"]
    stalls = metrics.registry.get_sample_value(
        "hamster_consumer_stalls_total", {"topic": "t.events", "partition": "3"}
    )
    assert stalls == 1


async def test_the_timer_waits_afresh_after_a_rebalance():
    """During a rebalance nothing is read again, and the wait starts over after it (it seeks anyway)."""
    clock = iter([0.0, 50.0, 100.0, 170.0])
    consumer = _consumer()
    app = _Timers(consumer)
    watch_stalls(app, ["t.events"], Metrics(), clock=lambda: next(clock))
    [find_stalls] = app.timers
    await find_stalls()
    app.rebalancing = True
    await find_stalls()
    app.rebalancing = False
    await find_stalls()
    assert consumer.rereads == []
    await find_stalls()
    assert consumer.rereads == ["reread"]
