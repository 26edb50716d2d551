"""Read a topic from its start to its current end (for the CLI: listings, history, replays, rebuilds).

``read_topic`` (kafka-python, blocking) suits small reads. ``read_batches`` (aiokafka) is for reading a
whole topic fast: kafka-python reads its socket 4 KiB at a time in Python, aiokafka in large chunks with
its compiled record parser, about twice the records per second on 28 KB webhooks here.

On top of those, the readers of each topic that the CLI, the dashboard and the agents share: the
subscribers table (``subscribers_now``, ``subscriber_changes``), the run log's requests
(``requests_since``, ``run_requests``, ``starts_by_delivery``) and the webhooks a replay selects
(``selected_events``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2
from pydantic import ValidationError

from hamster.errors import BrokerError
from hamster.intake.envelope import DELIVERY_HEADER, EventEnvelope, decode_envelope
from hamster.json_codec import loads
from hamster.kafka_access import KafkaAccess, aiokafka_options
from hamster.runs.events import RunRequested, decode_run_event
from hamster.runs.replay import EventFilter, select_events, start_in
from hamster.settings import Settings
from hamster.subscribers.changes import SUBSCRIBER_CHANGE, SubscriberChange, SubscriberState, fold_changes
from streams.kafka_python import connect
from streams.topics import run_events_topic, subscribers_topic

T = TypeVar("T")
log = logging.getLogger(__name__)


def _consumer(kafka: KafkaAccess, timeout_s: float) -> KafkaConsumer:
    """A consumer outside any group: it reads where it is told and commits nothing."""
    return connect(
        KafkaConsumer,
        kafka,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000),
        # Also bounds the first connection: a refused login (wrong password, no TLS) fails that long.
        bootstrap_timeout_ms=int(timeout_s * 1000),
        client_id="hamster-reader",
    )


def read_topic(
    kafka: KafkaAccess,
    topic: str,
    timeout_s: float = 30.0,
    *,
    since_ms: int | None = None,
    only: Iterable[int] | None = None,
    from_offset: int | None = None,
) -> Iterator[Any]:
    """Every record now in ``topic``, partition by partition, in offset order; stops at the current end.

    ``since_ms``: start each partition at its first record with that timestamp or later (Kafka's
    ListOffsets by time). ``only``: read just these partitions. ``from_offset``: start every partition read
    there (or at its log start, if retention deleted that far).
    """
    consumer = _consumer(kafka, timeout_s)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return
        wanted = sorted(partitions) if only is None else sorted(set(only) & set(partitions))
        assigned = [TopicPartition(topic, p) for p in wanted]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        starts = consumer.beginning_offsets(assigned)
        if since_ms is not None:
            found = consumer.offsets_for_times({tp: since_ms for tp in assigned})
            # No record at or after the time: the partition has nothing to read.
            starts = {tp: hit.offset if (hit := found.get(tp)) is not None else ends[tp] for tp in assigned}
        if from_offset is not None:
            starts = {tp: max(starts[tp], from_offset) for tp in assigned}
        for tp in assigned:
            if ends[tp] <= starts[tp]:
                continue
            consumer.assign([tp])
            consumer.seek(tp, starts[tp])
            position = consumer.position(tp)  # None only for a partition without a position: never after seek
            while position is not None and position < ends[tp]:
                for records in consumer.poll(timeout_ms=1000).values():
                    for record in records:
                        if record.offset < ends[tp]:
                            yield record
                position = consumer.position(tp)
    finally:
        consumer.close()


FETCH_PARTITION_BYTES = 8 * 1024 * 1024
"""Per partition and fetch (a larger record still comes whole: KIP-74); several partitions per fetch."""


async def read_batches(
    kafka: KafkaAccess,
    topic: str,
    *,
    since_ms: int | None = None,
    from_offset: int | None = None,
    max_records: int = 1000,
    timeout_s: float = 30.0,
) -> AsyncIterator[list[Any]]:
    """Every record now in ``topic``, as lists of at most ``max_records`` aiokafka ``ConsumerRecord``s;
    stops at the end offsets found when it started. Records of a partition come in offset order (all
    partitions are fetched at once, so partitions interleave between batches). Only one batch is held.

    ``since_ms``: start each partition at its first record stamped then or later. ``from_offset``: start
    every partition there (or at its log start).
    """
    # Named at construction (no group: nothing is committed), the consumer is given every partition of the
    # topic once its metadata arrived, which start() waits for.
    consumer = AIOKafkaConsumer(
        topic,
        **aiokafka_options(kafka),
        group_id=None,
        enable_auto_commit=False,
        client_id="hamster-reader",
        request_timeout_ms=int(timeout_s * 1000),
        max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
        fetch_max_bytes=4 * FETCH_PARTITION_BYTES,
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise BrokerError(f"cannot reach Kafka at {kafka.describe()}: {exc}") from exc
    try:
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not assigned:
            return
        ends = await consumer.end_offsets(assigned)
        starts = await consumer.beginning_offsets(assigned)
        if since_ms is not None:
            found = await consumer.offsets_for_times({tp: since_ms for tp in assigned})
            starts = {tp: hit.offset if (hit := found.get(tp)) is not None else ends[tp] for tp in assigned}
        if from_offset is not None:
            starts = {tp: max(starts[tp], from_offset) for tp in assigned}
        left = {tp for tp in assigned if ends[tp] > starts[tp]}
        for tp in left:
            consumer.seek(tp, starts[tp])
        while left:
            fetched = await consumer.getmany(*left, timeout_ms=1000, max_records=max_records)
            batch = [m for tp, messages in fetched.items() for m in messages if m.offset < ends[tp]]
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
            if batch:
                yield batch
    finally:
        await consumer.stop()


async def patiently(read: Callable[..., T], *args: Any, what: str) -> T:
    """``read(*args)`` in a thread, retried with backoff (up to 30 s apart) for as long as Kafka cannot be
    read: for agents that can decide nothing before. Any error is retried: a BrokerError, or kafka-python's
    own once a consumer exists (the broker restarting, say)."""
    delay = 1.0
    while True:
        try:
            return await asyncio.to_thread(read, *args)
        except Exception as exc:
            log.warning("cannot read %s (%s); retrying in %.0f s", what, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def end_offset(kafka: KafkaAccess, topic: str, partition: int, timeout_s: float = 30.0) -> int:
    """Where the next record of ``topic``'s ``partition`` will go."""
    consumer = _consumer(kafka, timeout_s)
    try:
        tp = TopicPartition(topic, partition)
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def _run_request(raw: bytes) -> RunRequested | None:
    """The ``RunRequested`` a run-log record holds, or None: the others are told apart by their bytes, not
    decoded."""
    if b'"RunRequested"' not in raw:
        return None
    try:
        event = decode_run_event(raw)
    except ValidationError:
        return None
    return event if isinstance(event, RunRequested) else None


def requests_since(kafka: KafkaAccess, topic: str, since_ms: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The run log ``topic``'s ``RunRequested`` records from ``since_ms`` on: run id → (offset, record)."""
    found: dict[str, Any] = {}
    for record in read_topic(kafka, topic, timeout_s, since_ms=since_ms):
        event = _run_request(record.value)
        if event is not None:
            found.setdefault(event.run_id, (record.offset, event))
    return found


async def run_requests(settings: Settings, since_ms: int | None = None) -> list[RunRequested]:
    """The run log's ``RunRequested`` records (from ``since_ms`` on), in the order read; fast (aiokafka)."""
    out = []
    async for batch in read_batches(settings.kafka, run_events_topic(settings), since_ms=since_ms):
        for record in batch:
            event = _run_request(record.value)
            if event is not None:
                out.append(event)
    return out


async def starts_by_delivery(settings: Settings) -> dict[str, set[str]]:
    """Which subscribers each delivery started (``hamster.runs.replay.started_by_delivery``), read from the
    run log's JSON: a dry run reads every start, and building each ``RunRequested`` would cost more than
    the matching."""
    out: dict[str, set[str]] = {}
    async for batch in read_batches(settings.kafka, run_events_topic(settings)):
        for record in batch:
            if b'"RunRequested"' not in record.value:
                continue
            try:
                start = start_in(loads(record.value))
            except (ValueError, AttributeError):  # not JSON, or not an object
                continue
            if start is not None:
                out.setdefault(start[0], set()).add(start[1])
    return out


def subscriber_changes(settings: Settings) -> list[SubscriberChange]:
    """Every change in the subscribers topic, oldest first (per subscriber: it is keyed by name)."""
    records = read_topic(settings.kafka, subscribers_topic(settings))
    return [SUBSCRIBER_CHANGE.validate_json(r.value) for r in records]


def subscribers_now(settings: Settings) -> dict[str, SubscriberState]:
    """The subscribers table as the workers published it: the subscribers topic, folded."""
    return fold_changes(subscriber_changes(settings))


@dataclass(frozen=True)
class SelectedBatch:
    """What one fetched batch of the events topic held: how many records, the selected webhooks not met in
    an earlier batch, and how many more were selected but left undecoded (``selected_events``).

    ``envelopes`` decodes each webhook as it is taken: take them all before asking for the next batch. A
    batch's payloads decoded at once and held together (some 25 KB of JSON each, hundreds a batch) made
    replay a fifth slower, mostly in the garbage collector."""

    read: int
    envelopes: Iterator[EventEnvelope]
    undecoded: int = 0


async def selected_events(
    kafka: KafkaAccess,
    topic: str,
    selection: EventFilter,
    *,
    since_ms: int | None = None,
    undecoded: Callable[[Any], bool] | None = None,
) -> AsyncIterator[SelectedBatch]:
    """The webhooks of the events ``topic`` that ``selection`` selects, batch by batch as fetched (one held
    at a time), each delivery once (a GitHub redelivery may sit in a later batch).

    A record its headers, key or timestamp rule out is not decoded at all, nor is one whose headers
    ``undecoded`` accepts (it is only counted); an undecodable one is skipped (the match agent set it aside
    as a dead letter: nothing to replay).
    """
    seen: set[str] = set()  # delivery ids
    async for batch in read_batches(kafka, topic, since_ms=since_ms):
        counted = 0
        to_decode = []
        for record in batch:
            if selection.rejects_record(record.headers, record.key, record.timestamp):
                continue
            if undecoded is not None and undecoded(record.headers):
                delivery = dict(record.headers)[DELIVERY_HEADER].decode(errors="replace")
                if delivery not in seen:
                    seen.add(delivery)
                    counted += 1
                continue
            to_decode.append(record)
        yield SelectedBatch(len(batch), _fresh(to_decode, selection, seen), counted)


def _fresh(records: list[Any], selection: EventFilter, seen: set[str]) -> Iterator[EventEnvelope]:
    """The selected webhooks among ``records`` whose delivery is not in ``seen`` (which they join)."""
    for envelope in select_events(_decoded(records), selection):
        if envelope.delivery_id not in seen:
            seen.add(envelope.delivery_id)
            yield envelope


def _decoded(records: Iterable[Any]) -> Iterator[EventEnvelope]:
    for record in records:
        try:
            yield decode_envelope(record.value)
        except ValueError:
            continue


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java's murmur2, as aiokafka and Faust use) gives ``key``."""
    return int((murmur2(key.encode()) & 0x7FFFFFFF) % partitions)


def log_start(kafka: KafkaAccess, topic: str, timeout_s: float = 30.0) -> tuple[int | None, bool]:
    """(timestamp in ms of the oldest record still held, whether retention already deleted any)."""
    oldest: int | None = None
    trimmed = False
    consumer = _consumer(kafka, timeout_s)
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not assigned:
            return None, False
        starts = consumer.beginning_offsets(assigned)
        ends = consumer.end_offsets(assigned)
        for tp in assigned:
            trimmed = trimmed or starts[tp] > 0
            if ends[tp] <= starts[tp]:
                continue
            consumer.assign([tp])
            consumer.seek(tp, starts[tp])
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=1000, max_records=1).get(tp)
                if batch:
                    stamp = int(batch[0].timestamp)
                    oldest = stamp if oldest is None else min(oldest, stamp)
                    break
        return oldest, trimmed
    finally:
        consumer.close()


def read_at(
    kafka: KafkaAccess, topic: str, partition: int, offset: int, timeout_s: float = 30.0
) -> Any | None:
    """The record at ``partition``/``offset``, or None when retention deleted it (or it never existed)."""
    for record in read_topic(kafka, topic, timeout_s, only=[partition], from_offset=offset):
        return record if record.offset == offset else None
    return None


def topic_size(kafka: KafkaAccess, topic: str, timeout_s: float = 30.0) -> int:
    """How many records ``topic`` holds now (end minus log start, summed over partitions)."""
    consumer = _consumer(kafka, timeout_s)
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not assigned:
            return 0
        starts, ends = consumer.beginning_offsets(assigned), consumer.end_offsets(assigned)
        return sum(ends[tp] - starts[tp] for tp in assigned)
    finally:
        consumer.close()


def bounds(kafka: KafkaAccess, topic: str, timeout_s: float = 30.0) -> dict[int, tuple[int, int]]:
    """Each partition's (log start offset, end offset): what retention (or delete-records) left, and where
    the next record goes."""
    consumer = _consumer(kafka, timeout_s)
    try:
        assigned = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not assigned:
            return {}
        starts, ends = consumer.beginning_offsets(assigned), consumer.end_offsets(assigned)
        return {tp.partition: (int(starts[tp]), int(ends[tp])) for tp in assigned}
    finally:
        consumer.close()
