"""Every run in flight, as this worker folds the run log: the state each stage decision starts from.

Each worker reads the whole run log and every stage topic itself, outside any consumer group (its own
aiokafka consumer, assigned every partition), and folds each run's records with the one state machine
(``hamster.runs.lifecycle.evolve``). All workers fold the same records in the same order, so they agree on
every run's state without asking each other: when two workers claim the same stage, both see the first claim
in the log win and the second refused. Kafka offsets say nothing here about what was done; the log does.

What it keeps is bounded by the runs in flight, not by history: a run leaves the view when it ends (a
short list of recently ended runs stays, to tell a late record from an unknown one). A starting worker
does not read the whole log either: every minute each worker writes, per run-log partition, an offset
before which every run has ended (the run-marks topic), and a new worker folds from there. Stage topics
are read from shortly before the oldest run in flight was requested.

Stage requests (``RunStage``) are what admits a run to the workers and carry its webhook's payload: the
view keeps the latest one per run in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from hamster.errors import InvalidTransition
from hamster.kafka_access import aiokafka_options
from hamster.metrics import Metrics
from hamster.runs.events import RunEvent, RunRequested, RunStage, decode_run_event
from hamster.runs.lifecycle import RunState, evolve
from hamster.settings import Settings
from streams.reader import partition_for
from streams.topics import MAX_MESSAGE_BYTES, run_events_topic, run_marks_topic

log = logging.getLogger(__name__)

RECENTLY_ENDED = 5000  # ended runs remembered, so a straggling record of one is not taken for a new run
OUTCOMES_KEPT = 50_000  # (partition, offset) → accepted, for writers asking after their own records
STAGE_TOPIC_MARGIN_MS = 5 * 60 * 1000  # clocks apart, and a request written just before its RunRequested
ORPHAN_OFFER_S = 600.0  # a stage request whose run never shows up in the log is dropped after this
MARK_EVERY_S = 60.0


class RunView:
    """The states of the runs in flight, their stage requests, and whether each record was accepted."""

    def __init__(self, settings: Settings, stage_topics: list[str], metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.run_log = run_events_topic(settings)
        self.stage_topics = sorted(set(stage_topics))
        self.states: dict[str, RunState] = {}
        self.requests: dict[str, tuple[int, RunRequested]] = {}  # run id → (offset, its RunRequested)
        self.touched: dict[str, datetime] = {}  # run id → time of its latest accepted record
        self.offers: dict[str, tuple[RunStage, float]] = {}  # run id → (latest stage request, seen at)
        self.ended: OrderedDict[str, RunState] = OrderedDict()
        self.undecodable: list[tuple[Any, Exception]] = []  # stage-topic records that are no RunStage
        self.ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._run_changed: dict[str, asyncio.Event] = {}
        self._outcomes: OrderedDict[tuple[int, int], bool] = OrderedDict()
        self._waiting: dict[tuple[int, int], list[asyncio.Future[bool]]] = {}
        self._positions: dict[int, int] = {}  # run-log partition → next offset to fold
        self._stage_positions: dict[TopicPartition, int] = {}  # stage topic partition → next offset
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_mark = 0.0
        self.refused = 0

    # What writers and the scheduler ask
    def state(self, run_id: str) -> RunState | None:
        return self.states.get(run_id)

    def in_flight(self) -> list[RunState]:
        """The runs in flight, oldest request first."""
        return sorted(self.states.values(), key=lambda s: s.requested_at)

    def offer(self, run_id: str) -> RunStage | None:
        found = self.offers.get(run_id)
        return found[0] if found else None

    def poke(self) -> None:
        """Wake whoever waits in ``changed`` (a slot came free, the worker is stopping)."""
        self._changed.set()

    async def changed(self, timeout: float) -> None:
        """Return when any run changed or a stage request arrived, or after ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()

    def run_changed(self, run_id: str) -> asyncio.Event:
        """An event set whenever ``run_id``'s state changes (the caller clears it)."""
        return self._run_changed.setdefault(run_id, asyncio.Event())

    def forget_watch(self, run_id: str) -> None:
        self._run_changed.pop(run_id, None)

    async def accepted(self, partition: int, offset: int, timeout: float = 120.0) -> bool:
        """Whether the run-log record at ``partition``/``offset`` was accepted, once this view folded it."""
        key = (partition, offset)
        if key in self._outcomes:
            return self._outcomes[key]
        if self._positions.get(partition, 0) > offset:
            return False  # folded long ago and forgotten: not a record this worker is still waiting for
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(waiter)
        return await asyncio.wait_for(waiter, timeout)

    async def wait_for_run(self, run_id: str, partition: int, offset: int | None, timeout: float) -> None:
        """Wait (up to ``timeout``) until the view knows ``run_id``, or has folded past ``offset``."""
        deadline = time.monotonic() + timeout
        while run_id not in self.states and run_id not in self.ended and time.monotonic() < deadline:
            if offset is not None and self._positions.get(partition, 0) > offset:
                return
            await asyncio.sleep(0.05)

    # Folding
    def apply_run_record(self, partition: int, offset: int, value: bytes) -> None:
        try:
            record: RunEvent = decode_run_event(value)
        except (ValidationError, ValueError):
            self._settle(partition, offset, False)
            return
        run_id = record.run_id
        state = self.states.get(run_id)
        if state is None and not isinstance(record, RunRequested):
            # A run that ended before this worker's starting mark (or a record without its run).
            self._settle(partition, offset, False, counted=run_id in self.ended, record=record)
            return
        if state is None and run_id in self.ended:
            self._settle(partition, offset, False, counted=True, record=record)
            return
        try:
            new = evolve(state, record).model_copy(update={"log_offset": offset})
        except InvalidTransition as exc:
            log.info("run log %d@%d refused: %s", partition, offset, exc)
            self._settle(partition, offset, False, counted=True, record=record)
            return
        if isinstance(record, RunRequested):
            self.requests[run_id] = (offset, record)
        self.touched[run_id] = record.occurred_at
        if new.finished:
            self._end(new)
        else:
            self.states[run_id] = new
        watcher = self._run_changed.get(run_id)
        if watcher is not None:
            watcher.set()
        self._settle(partition, offset, True)

    def apply_stage_request(self, record: Any) -> None:
        try:
            request = RunStage.model_validate_json(record.value)
        except (ValidationError, ValueError) as exc:
            self.undecodable.append((record, exc))  # the stage worker sets it aside (on one worker)
            return
        if request.run_id in self.ended:
            return
        self.offers[request.run_id] = (request, time.monotonic())

    def _end(self, state: RunState) -> None:
        run_id = state.run_id
        self.states.pop(run_id, None)
        self.requests.pop(run_id, None)
        self.touched.pop(run_id, None)
        self.offers.pop(run_id, None)
        self.ended[run_id] = state
        while len(self.ended) > RECENTLY_ENDED:
            self.ended.popitem(last=False)

    def _settle(
        self, partition: int, offset: int, ok: bool, *, counted: bool = False, record: Any = None
    ) -> None:
        if counted:
            self.refused += 1
            self.metrics.records_refused.labels(type=getattr(record, "type", "?")).inc()
        self._outcomes[(partition, offset)] = ok
        while len(self._outcomes) > OUTCOMES_KEPT:
            self._outcomes.popitem(last=False)
        for waiter in self._waiting.pop((partition, offset), []):
            if not waiter.done():
                waiter.set_result(ok)
        self._positions[partition] = offset + 1

    def marks(self) -> dict[int, int]:
        """Per run-log partition, an offset before which every run has ended (by this view's reading)."""
        oldest: dict[int, int] = {}
        for run_id in self.states:
            found = self.requests.get(run_id)
            if found is None:
                continue
            state = self.states[run_id]
            partition = self._partition_of(state)
            if partition is not None:
                oldest[partition] = min(oldest.get(partition, found[0]), found[0])
        return {p: oldest.get(p, position) for p, position in self._positions.items()}

    def _partition_of(self, state: RunState) -> int | None:
        return partition_for(state.run_id, self.settings.partitions)

    # Running
    def start(self) -> None:
        """Start following the log (once; the first writer or the stage worker, whichever comes first)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    async def _run(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker went away at start; the consumer retries once started
                log.warning("run view: cannot read the run log (%s); retrying in %.0f s", exc, delay)
                if self._consumer is not None:
                    with contextlib.suppress(Exception):
                        await self._consumer.stop()
                    self._consumer = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            **aiokafka_options(self.settings.kafka),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="hamster-run-view",
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            fetch_max_bytes=MAX_MESSAGE_BYTES * 2,
            fetch_max_wait_ms=200,
        )
        self._consumer = consumer
        await consumer.start()
        partitions = range(self.settings.partitions)
        run_tps = [TopicPartition(self.run_log, p) for p in partitions]
        if not self.ready.is_set():
            await self._catch_up(consumer, run_tps)
        stage_tps = [TopicPartition(t, p) for t in self.stage_topics for p in partitions]
        consumer.assign(run_tps + stage_tps)
        for tp in run_tps:
            consumer.seek(tp, self._positions.get(tp.partition, 0))
        await self._seek_stage_topics(consumer, stage_tps)
        if not self.ready.is_set():
            await self._read_to_end(consumer, run_tps + stage_tps)
            self.ready.set()
            log.info("run view: %d run(s) in flight, %d admitted", len(self.states), len(self.offers))
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
            self._apply(batches)
            self._drop_orphan_offers()

    async def _catch_up(self, consumer: AIOKafkaConsumer, run_tps: list[TopicPartition]) -> None:
        """Fold the run log from the latest marks to its current end."""
        marks = await self._read_marks(consumer)
        consumer.assign(run_tps)
        starts = await consumer.beginning_offsets(run_tps)
        for tp in run_tps:
            start = max(marks.get(tp.partition, 0), starts[tp])
            self._positions.setdefault(tp.partition, start)
            consumer.seek(tp, self._positions[tp.partition])
        await self._read_to_end(consumer, run_tps)

    async def _read_marks(self, consumer: AIOKafkaConsumer) -> dict[int, int]:
        tp = TopicPartition(run_marks_topic(self.settings), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        marks: dict[int, int] = {}
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for record in records:
                    with contextlib.suppress(TypeError, ValueError):
                        marks[int(record.key)] = int(record.value)
        return marks

    async def _seek_stage_topics(self, consumer: AIOKafkaConsumer, stage_tps: list[TopicPartition]) -> None:
        if not stage_tps:
            return
        if self.ready.is_set():  # reconnecting: go on from where this view was
            for tp in stage_tps:
                if tp in self._stage_positions:
                    consumer.seek(tp, self._stage_positions[tp])
            return
        oldest = min((s.requested_at for s in self.states.values()), default=None)
        since_ms = int((oldest.timestamp() if oldest else time.time()) * 1000) - STAGE_TOPIC_MARGIN_MS
        # The ends first: a request written between the two questions is then at or after the end this
        # seeks to when the time finds nothing (asked the other way round, it fell between them, unread).
        ends = await consumer.end_offsets(stage_tps)
        found = await consumer.offsets_for_times({tp: since_ms for tp in stage_tps})
        for tp in stage_tps:
            at = found.get(tp)
            consumer.seek(tp, at.offset if at is not None else ends[tp])

    async def _read_to_end(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        ends = await consumer.end_offsets(tps)
        while True:
            behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not behind:
                return
            self._apply(await consumer.getmany(*behind, timeout_ms=1000, max_records=5000))

    def _apply(self, batches: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in batches.items():
            for record in records:
                if tp.topic == self.run_log:
                    if record.offset >= self._positions.get(tp.partition, 0):
                        self.apply_run_record(tp.partition, record.offset, record.value)
                else:
                    self.apply_stage_request(record)
                    self._stage_positions[tp] = record.offset + 1
        if batches:
            self._changed.set()

    def _drop_orphan_offers(self) -> None:
        now = time.monotonic()
        for run_id, (_, seen) in list(self.offers.items()):
            if run_id not in self.states and now - seen > ORPHAN_OFFER_S:
                del self.offers[run_id]

    def due_marks(self) -> dict[int, int] | None:
        """The marks to write now (once a minute, once the view is ready), or None."""
        now = time.monotonic()
        if not self.ready.is_set() or now - self._last_mark < MARK_EVERY_S:
            return None
        self._last_mark = now
        return self.marks()
