"""``EventProducer``: appends envelopes to the events topic with aiokafka, and says so only once stored.

The intake answers GitHub 2xx only after ``append`` returned, so ``append`` returns only after every in-sync
replica acknowledged the write (``acks="all"``, idempotent producer) and raises ``BrokerError`` otherwise.

The broker may be down when the intake starts and may restart while it runs. The aiokafka producer is
therefore made lazily, on first use, and thrown away after any failure: the next call makes a fresh one.
A write that timed out may still land later; GitHub then redelivers it under the same delivery id, which is
why consumers deduplicate on ``delivery_id`` (at-least-once, never "acknowledged but lost").
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from hamster.errors import BrokerError
from hamster.intake.envelope import EventEnvelope, encode_envelope, kafka_headers
from hamster.kafka_access import KafkaAccess, aiokafka_options
from hamster.settings import Settings
from streams.topics import MAX_MESSAGE_BYTES, events_topic

log = logging.getLogger(__name__)


class EventProducer:
    """Appends ``EventEnvelope``s to one topic; the record key is ``envelope.key`` as raw UTF-8."""

    def __init__(self, kafka: KafkaAccess, topic: str, *, timeout_s: float = 10.0) -> None:
        self.kafka = kafka
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._connecting = asyncio.Lock()
        self._closed = False

    @classmethod
    def for_settings(cls, settings: Settings) -> EventProducer:
        """The producer for ``settings``' events topic."""
        return cls(settings.kafka, events_topic(settings))

    async def start(self) -> None:
        """Try to connect now; a broker that is down is not an error here (``append`` retries it)."""
        self._closed = False
        try:
            await self._connected()
        except BrokerError as exc:
            log.warning("Kafka not reachable yet, will retry on the next write: %s", exc)

    async def stop(self) -> None:
        self._closed = True
        async with self._connecting:
            producer, self._producer = self._producer, None
        if producer is not None:
            await _close(producer)

    async def append(self, envelope: EventEnvelope) -> tuple[int, int]:
        """Write one envelope; return (partition, offset) once the broker acknowledged it."""
        producer = await self._connected()
        try:
            async with asyncio.timeout(self.timeout_s):
                metadata = await producer.send_and_wait(
                    self.topic,
                    value=encode_envelope(envelope),
                    # Raw bytes, not JSON: Kafka hashes the key bytes, and every consumer that joins on the
                    # repository name must produce the same ones.
                    key=envelope.key.encode(),
                    headers=kafka_headers(envelope),
                )
        except Exception as exc:  # aiokafka's KafkaError tree, timeouts and connection errors alike
            await self._discard(producer)
            raise BrokerError(f"write to {self.topic} failed: {_describe(exc)}") from exc
        return int(metadata.partition), int(metadata.offset)

    async def ready(self) -> bool:
        """True when a metadata request to the broker succeeds and lists the events topic."""
        try:
            producer = await self._connected()
        except BrokerError:
            return False
        try:
            async with asyncio.timeout(self.timeout_s):
                cluster = await producer.client.fetch_all_metadata()
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            log.info("Kafka metadata request failed: %s", _describe(exc))
            await self._discard(producer)
            return False
        return self.topic in set(cluster.topics())

    async def _connected(self) -> AIOKafkaProducer:
        if self._closed:
            raise BrokerError("the event producer is stopped")
        async with self._connecting:
            if self._producer is not None:
                return self._producer
            producer = self._new_producer()
            try:
                async with asyncio.timeout(self.timeout_s):
                    await producer.start()
            except Exception as exc:
                await _close(producer)
                raise BrokerError(f"cannot reach Kafka at {self.kafka.describe()}: {_describe(exc)}") from exc
            self._producer = producer
            log.info("connected to Kafka at %s", self.kafka.describe())
            return producer

    def _new_producer(self) -> AIOKafkaProducer:
        request_timeout_ms = int(self.timeout_s * 1000)
        return AIOKafkaProducer(
            **aiokafka_options(self.kafka),
            client_id="hamster-intake",
            acks="all",
            enable_idempotence=True,
            max_request_size=MAX_MESSAGE_BYTES,
            # Bounded, so a dead broker turns into an error (and a 503) instead of a request that hangs.
            request_timeout_ms=request_timeout_ms,
            linger_ms=0,
        )

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        """Drop ``producer`` after a failure so the next call starts afresh (unless another did already)."""
        async with self._connecting:
            if self._producer is producer:
                self._producer = None
            else:
                return
        await _close(producer)


async def _close(producer: AIOKafkaProducer) -> None:
    try:
        async with asyncio.timeout(5):
            await producer.stop()
    except Exception as exc:  # closing a producer whose broker is gone can fail; it is being dropped anyway
        log.debug("closing the Kafka producer failed: %s", _describe(exc))


def _describe(exc: BaseException) -> str:
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
