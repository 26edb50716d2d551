"""Agent: project the run log into SQL (runs and stages), idempotently, off the event loop, a batch at a
time.

The agent takes what has arrived (up to ``BATCH_MAX`` records, waiting at most ``BATCH_WITHIN_S`` for more),
folds it per run and writes each changed row once in one transaction
(``hamster.projection.sql.apply_records``), and only then acknowledges the batch's records. Faust's
``take_events()`` would acknowledge a batch in a ``finally`` even when a rebalance cut it off, so a commit
could pass records that never reached SQL (seen here with two workers); ``noack_take`` acknowledges nothing
itself: a batch cut off is read again by the partition's next owner, and applying a record twice changes
nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine

from agents.plumbing import decode_or_set_aside
from hamster.kafka_access import KafkaAccess
from hamster.projection.sql import Item, apply, apply_records, missing_before
from hamster.runs.events import RunEvent, decode_run_event
from streams.app import Streams
from streams.reader import read_topic

log = logging.getLogger(__name__)

BATCH_MAX = 500
BATCH_WITHIN_S = 0.02  # how long a record waits for others to share its transaction
RETRY_MAX_S = 30.0


def register(streams: Streams, engine: Engine) -> None:
    topic_name = streams.run_events.get_topic_name()
    kafka = streams.settings.kafka

    @streams.app.agent(streams.run_events, name="hamster.projection", concurrency=1)
    async def project(stream: Any) -> None:  # Faust types noack_take's events as values: Any here
        async for events in stream.noack_take(BATCH_MAX, within=BATCH_WITHIN_S):
            items: list[Item] = []
            for event in events:
                record = await decode_or_set_aside(streams, "projection", decode_run_event, event)
                if record is not None:
                    items.append((event.message.partition, event.message.offset, record))
            delay = 1.0
            while True:
                try:
                    await asyncio.to_thread(project_batch, kafka, engine, topic_name, items)
                    break
                except Exception:  # the database away: the batch waits, unacknowledged, and is tried again
                    log.exception(
                        "projection: %d record(s) not written; trying again in %.0f s", len(items), delay
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
            for event in events:
                await stream.ack(event)


def project_batch(kafka: KafkaAccess, engine: Engine, topic: str, items: list[Item]) -> None:
    """Fill the gaps the batch's runs have (``heal_gap``), then apply the batch in one transaction.

    A batch in which a run skips a sequence number (Faust resuming past records after a rebalance, inside
    the batch) is applied a record at a time instead, each after its own gap check."""
    if has_holes(items):
        for partition, offset, record in items:
            heal_gap(kafka, engine, topic, partition, offset, record)
            with engine.begin() as conn:
                apply_records(conn, topic, [(partition, offset, record)])
        return
    firsts: dict[str, Item] = {}
    for item in items:
        firsts.setdefault(item[2].run_id, item)
    for partition, offset, record in firsts.values():
        heal_gap(kafka, engine, topic, partition, offset, record)
    with engine.begin() as conn:
        apply_records(conn, topic, items)


def has_holes(items: list[Item]) -> bool:
    """Whether a run's records in ``items`` skip a sequence number (a record read twice is no hole)."""
    last: dict[str, int] = {}
    for _, _, record in items:
        previous = last.get(record.run_id)
        if previous is not None and record.seq > previous + 1:
            return True
        last[record.run_id] = max(record.seq, previous or 0)
    return False


def heal_gap(
    kafka: KafkaAccess, engine: Engine, topic: str, partition: int, offset: int, record: RunEvent
) -> None:
    """Fill a gap in a run's sequence from the run log itself.

    Faust has been seen to resume a newly assigned partition past its first record after a rebalance
    (the records were in Kafka, committed past, never delivered to the agent). The log is the truth, so
    the projection reads the run's earlier records back rather than showing a run that never began.
    """
    with engine.connect() as conn:
        if not missing_before(conn, record):
            return
    log.warning(
        "projection: run %s has a gap before seq %d (%s/%s/%s); reading it back from the log",
        record.run_id,
        record.seq,
        topic,
        partition,
        offset,
    )
    earlier = [
        decode_run_event(r.value)
        for r in read_topic(kafka, topic, only=[partition])
        if r.offset < offset and r.key == record.run_id.encode()
    ]
    with engine.begin() as conn:
        for item in sorted(earlier, key=lambda r: r.seq):
            apply(conn, topic, partition, -1, item, track=False)
