"""The stall watch: a partition whose committed offset stands still behind records nobody is processing is
read again from that offset.

Faust commits a partition only up to its first record not acknowledged. A record that never reaches an
agent (dropped from the agents' queues at a rebalance, ``streams/transport.py``) is never acknowledged:
the agent goes on with the records after it, and the partition's commit stops there for good. Nothing
else notices (the reaper, ``agents.stages``, only sees runs already requested), and the webhook is lost
until another worker takes the partition over. Here every worker checks the partitions it holds of the
watched topics every ``CHECK_EVERY_S``: one whose committed offset has not moved for ``STALL_AFTER_S``
while records lie behind it, and whose record at that offset is not being processed, is logged as an
error and counted (``hamster_consumer_stalls_total``), and the worker reads its partitions again from
their committed offsets, as at the end of a rebalance. Reading again is safe: every agent is written for
at-least-once delivery (the match agent skips a delivery it has seen, and its run ids are deterministic).
Records Faust committed past (when its fetch loop took the skip for a gap in the log) are beyond what a
watch of commits can see: ``_Consumer.perform_seek`` is what keeps them from being skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from hamster.metrics import Metrics

log = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0
# Longer than the match agent can spend on one webhook (its wait for the subscribers table, 30 s, or its
# tries at writing the runs, 15 s): a record being processed is not a stall, but records queued behind
# a slow one are not visible as being processed.
STALL_AFTER_S = 60.0


@dataclass(frozen=True)
class Position:
    """One partition this worker holds, as its consumer sees it now."""

    committed: int | None  # the offset the group committed: the next record to process
    end: int | None  # the partition's end (highwater): the offset its next record will get
    in_hand: bool  # the record at the committed offset is being processed


class StallWatch:
    """Which partitions stalled: committed offset unchanged for ``after_s``, records behind it, and the
    record at it not being processed all that time. Pure: the caller says what it saw, and when."""

    def __init__(self, after_s: float = STALL_AFTER_S) -> None:
        self.after_s = after_s
        self._since: dict[Any, tuple[int, float]] = {}  # partition → (committed offset, seen there since)

    def stalled(self, positions: Mapping[Any, Position], now: float) -> list[tuple[Any, int]]:
        """The stalled partitions among ``positions``, with the offset to read them again from. A
        partition reported stalled starts a new wait, as does one no longer listed (revoked)."""
        since: dict[Any, tuple[int, float]] = {}
        found = []
        for tp, seen in positions.items():
            if seen.committed is None or seen.end is None or seen.committed >= seen.end or seen.in_hand:
                continue
            offset, start = self._since.get(tp, (seen.committed, now))
            if offset != seen.committed:
                start = now
            if now - start >= self.after_s:
                found.append((tp, seen.committed))
                start = now
            since[tp] = (seen.committed, start)
        self._since = since
        return found


def positions(consumer: Any, topics: Collection[str]) -> dict[Any, Position]:
    """What ``consumer`` (a Faust consumer) knows now of the partitions of ``topics`` it holds."""
    # Faust keeps the offsets it last committed (or sought to) in ``_committed_offset``; there is no public
    # accessor (pinned by tests/unit/streams/test_transport_assumptions.py).
    committed: Mapping[Any, int | None] = consumer._committed_offset
    in_hand = {(message.tp, message.offset) for message in list(consumer.unacked)}
    found = {}
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        try:
            end: int | None = consumer.highwater(tp)
        except Exception:  # the fetcher has not seen this partition's end yet
            end = None
        offset = committed.get(tp)
        found[tp] = Position(offset, end, (tp, offset) in in_hand)
    return found


def watch_stalls(
    app: Any, topics: Collection[str], metrics: Metrics, clock: Callable[[], float] = time.monotonic
) -> None:
    """Check the partitions of ``topics`` this worker holds every ``CHECK_EVERY_S`` (a Faust timer); when
    one stalled, read every partition again from its committed offset (``streams.transport._Consumer
    .reread``: the seek a rebalance ends with; records read since the last commit are read twice)."""
    watch = StallWatch()

    @app.timer(CHECK_EVERY_S)  # type: ignore[untyped-decorator]
    async def find_stalls() -> None:
        consumer = app.consumer
        if app.rebalancing or not consumer.flow_active:
            watch.stalled({}, clock())  # a rebalance seeks every partition: start again after it
            return
        seen = positions(consumer, topics)
        stalled = watch.stalled(seen, clock())
        for tp, offset in stalled:
            log.error(
                "%s[%d]: committed offset %d has not moved for %.0f s although the partition ends at %s "
                "and no agent is processing its record; reading it again from there",
                tp.topic,
                tp.partition,
                offset,
                watch.after_s,
                seen[tp].end,
            )
            metrics.consumer_stalls.labels(topic=tp.topic, partition=str(tp.partition)).inc()
        if stalled:
            await consumer.reread()
