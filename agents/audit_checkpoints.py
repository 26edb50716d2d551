"""Not a Faust agent: every ``HAMSTER_AUDIT_CHECKPOINT_INTERVAL_S`` seconds, each worker checkpoints the
run-log partitions it holds. It reads what is new since the partition's newest checkpoint, folds it
(``hamster.runs.audit_checkpoints.advance``: a checkpoint every ``HAMSTER_AUDIT_CHECKPOINT_RECORDS`` records
and one at the end) and appends the signed checkpoints to ``<ns>.audit-checkpoints``. The checkpoints topic
itself is the state: a worker that takes a partition over continues from the newest checkpoint there, and
two workers checkpointing one partition during a rebalance write checkpoints that agree.

Without ``HAMSTER_AUDIT_KEY`` nothing is written (the worker says so at start).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime
from typing import Any, cast

from mode import Service

from hamster.runs.audit_checkpoints import (
    Checkpoint,
    Fold,
    advance,
    decode_checkpoint,
    genesis,
    resume,
    sign,
    signed_by,
)
from hamster.settings import Settings
from streams.app import Streams, send_acked
from streams.reader import read_topic
from streams.topics import audit_checkpoints_topic, run_events_topic

log = logging.getLogger(__name__)


class Checkpoints:
    """The newest checkpoint signed with our key, per partition, kept up to date from the topic."""

    def __init__(self, settings: Settings, key: bytes) -> None:
        self.settings = settings
        self.key = key
        self.newest: dict[int, Checkpoint] = {}
        self._next = 0  # the checkpoints topic's next offset to read (one partition)

    def catch_up(self) -> None:
        """Read the checkpoints written since the last call (blocking: run it in a thread)."""
        topic = audit_checkpoints_topic(self.settings)
        for record in read_topic(self.settings.kafka, topic, from_offset=self._next):
            self._next = record.offset + 1
            checkpoint = decode_checkpoint(record.value)
            if checkpoint is None or not signed_by(checkpoint, self.key):
                continue  # not ours: `audit verify` reports it
            known = self.newest.get(checkpoint.partition)
            if known is None or checkpoint.offset > known.offset:
                self.newest[checkpoint.partition] = checkpoint

    def due(self, partition: int) -> list[Fold]:
        """The partition's new records folded: the states to checkpoint (blocking: run it in a thread)."""
        known = self.newest.get(partition)
        start = known.offset + 1 if known is not None else None
        records = read_topic(
            self.settings.kafka, run_events_topic(self.settings), only=[partition], from_offset=start
        )
        first = next(records, None)
        if first is None:
            return []
        # No checkpoint yet: the chain begins at the log's start.
        state = resume(known) if known else genesis(partition, first.offset)
        rows = ((r.offset, r.key, r.value) for r in itertools.chain([first], records))
        return advance(state, rows, self.settings.audit_checkpoint_records)[1]


class Checkpointer(Service):
    def __init__(self, streams: Streams, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.streams = streams
        key = streams.settings.audit_key
        self.checkpoints = Checkpoints(streams.settings, key.get_secret_value().encode()) if key else None

    async def on_start(self) -> None:
        if self.checkpoints is None:
            log.warning(
                "HAMSTER_AUDIT_KEY is not set: no audit checkpoints are written, so `hamster audit verify` "
                "cannot see re-sealed forgeries, reordering or a cut-off tail"
            )
            return
        self.add_future(self._checkpoint_periodically())

    async def _checkpoint_periodically(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(self.streams.settings.audit_checkpoint_interval_s)
            try:
                await self.checkpoint_held()
            except Exception:  # Kafka unreachable: the same records are folded next time
                log.exception("audit checkpoints not written; trying again")

    def _held(self) -> list[int]:
        topic = self.streams.run_events.get_topic_name()
        try:
            assigned = self.streams.app.consumer.assignment()
        except Exception:  # the consumer is not started (yet), or stopping
            return []
        return sorted(tp.partition for tp in assigned if tp.topic == topic)

    async def checkpoint_held(self) -> None:
        checkpoints = cast(Checkpoints, self.checkpoints)
        held = self._held()
        if not held:
            return
        await asyncio.to_thread(checkpoints.catch_up)
        for partition in held:
            for state in await asyncio.to_thread(checkpoints.due, partition):
                checkpoint = sign(state, datetime.now(UTC), checkpoints.key)
                await send_acked(
                    self.streams.audit_checkpoints, str(partition), checkpoint.model_dump_json().encode()
                )
                checkpoints.newest[partition] = checkpoint
                log.debug("audit checkpoint: partition %d up to offset %d", partition, checkpoint.offset)


def register(streams: Streams) -> None:
    streams.app.service(cast(Any, Checkpointer(streams)))
