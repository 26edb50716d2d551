"""The Kafka side of stage logs: the worker's sender, and the one reader of ``<ns>.logs`` (for the CLI and
the dashboard).

The sender takes what a ``StageLog`` holds every ``FLUSH_EVERY_S`` and sends it, acknowledged, in order;
``close`` sends the rest with ``end: true``. The worker closes the log before it records the attempt's
outcome, so once a run's end is in the run log, its log is complete in ``<ns>.logs``.

The reader follows one run: the run's partition of ``<ns>.logs`` from a little before the run was
requested (Kafka's ListOffsets by time), and, when following, the same partition of the run log (both
are keyed by run id) to see the run end; then it reads the logs topic to the end it had at that moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TopicT
from pydantic import ValidationError

from hamster.errors import BrokerError
from hamster.execution.stage_logs import LogChunk, StageLog
from hamster.kafka_access import aiokafka_options
from hamster.settings import Settings
from streams.reader import partition_for
from streams.topics import logs_topic, run_events_topic

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.5
LOOK_BACK_MS = 60_000  # clocks of workers and broker differ a little: start the read this much earlier
_RUN_ENDS = (b'"RunSucceeded"', b'"RunFailed"', b'"RunCancelled"')


class LogSender:
    """Sends one attempt's ``StageLog`` to ``<ns>.logs`` while it runs."""

    def __init__(self, topic: TopicT, stage_log: StageLog) -> None:
        self.topic = topic
        self.stage_log = stage_log
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.ensure_future(self._send_every())

    async def _send_every(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self._send(self.stage_log.take())

    async def _send(self, chunks: list[LogChunk]) -> None:
        for chunk in chunks:
            try:
                pending = await self.topic.send(
                    key=chunk.run_id.encode(), value=chunk.model_dump_json().encode()
                )
                await pending
            except Exception as exc:  # a lost chunk must never fail the stage it belongs to
                log.warning(
                    "run %s: a log chunk of stage %s was not sent: %s", chunk.run_id, chunk.stage, exc
                )

    async def close(self) -> None:
        """Send what is left, the last chunk marked ``end``."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        await self._send(self.stage_log.take(final=True))


async def read_run_log(
    settings: Settings,
    run_id: str,
    *,
    since_ms: int | None = None,
    from_offset: int | None = None,
    follow: bool = False,
    stage: str | None = None,
) -> AsyncIterator[tuple[int, LogChunk]]:
    """``(offset, chunk)`` for every chunk of ``run_id`` (of ``stage``), in the order written. Without
    ``follow`` it stops at the topic's current end; with it, once the run has ended and its log is read.
    ``from_offset`` (a reader resuming) wins over ``since_ms`` (the run's request time)."""
    partition = partition_for(run_id, settings.partitions)
    logs_tp = TopicPartition(logs_topic(settings), partition)
    runs_tp = TopicPartition(run_events_topic(settings), partition)
    wanted = [logs_tp, runs_tp] if follow else [logs_tp]
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings.kafka),
        group_id=None,
        enable_auto_commit=False,
        client_id="hamster-log-reader",
        fetch_max_wait_ms=200,  # a live view: do not let the broker hold a fetch for long
    )
    try:
        await consumer.start()
    except Exception as exc:  # aiokafka's KafkaConnectionError and friends
        raise BrokerError(f"cannot reach Kafka at {settings.kafka.describe()}: {exc}") from exc
    try:
        consumer.assign(wanted)
        ends = await consumer.end_offsets(wanted)
        starts = await consumer.beginning_offsets(wanted)
        since = max(0, since_ms - LOOK_BACK_MS) if since_ms is not None else None
        found = await consumer.offsets_for_times({tp: since for tp in wanted}) if since is not None else {}
        for tp in wanted:
            start = starts[tp]
            if tp == logs_tp and from_offset is not None:
                start = max(start, from_offset)
            elif since is not None:
                hit = found.get(tp)
                start = hit.offset if hit is not None else ends[tp]
            consumer.seek(tp, start)
        stop_at: int | None = None if follow else ends[logs_tp]
        key = run_id.encode()
        while True:
            if stop_at is not None and await consumer.position(logs_tp) >= stop_at:
                return
            batches = await consumer.getmany(*wanted, timeout_ms=250)
            for tp, records in batches.items():
                for record in records:
                    if record.key != key:
                        continue
                    if tp == runs_tp:
                        if stop_at is None and any(end in record.value for end in _RUN_ENDS):
                            stop_at = (await consumer.end_offsets([logs_tp]))[logs_tp]
                        continue
                    if stop_at is not None and record.offset >= stop_at:
                        continue
                    try:
                        chunk = LogChunk.model_validate_json(record.value)
                    except ValidationError:
                        log.warning("logs %s@%d: not a log chunk; skipped", tp, record.offset)
                        continue
                    if stage is None or chunk.stage == stage:
                        yield record.offset, chunk
    finally:
        await consumer.stop()
