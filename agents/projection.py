"""Agent: project the run log into SQL (runs and stages), idempotently, off the event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from agents.dead_letters import set_aside
from hamster.kafka_access import KafkaAccess
from hamster.projection import apply, apply_batch, missing_before
from hamster.run_events import RunEvent, decode_run_event
from streams.app import Streams
from streams.reader import read_topic

log = logging.getLogger(__name__)


def register(streams: Streams, engine: Engine) -> None:
    topic_name = streams.run_events.get_topic_name()

    # One record at a time, acknowledged only after its transaction committed. Faust's take_events()
    # acknowledges a whole buffered batch in a ``finally`` even when the batch was cut off by a rebalance,
    # so a commit could pass records that never reached SQL (seen here with two workers).
    @streams.app.agent(streams.run_events, name="hamster.projection", concurrency=1)
    async def project(stream: Any) -> None:
        async for event in stream.events():
            try:
                record: RunEvent = decode_run_event(event.value)
            except (ValidationError, ValueError) as exc:
                await set_aside(streams, "projection", exc, event)
                continue
            partition, offset = event.message.partition, event.message.offset
            await asyncio.to_thread(
                heal_gap, streams.settings.kafka, engine, topic_name, partition, offset, record
            )
            await asyncio.to_thread(apply_batch, engine, topic_name, [(partition, offset, record)])


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
