"""Reading the dead letters, numbered, and sending them back to the topics they came from.

Used by ``hamster dlq list|replay`` and by the dashboard's ``/api/dead-letters``, so the two cannot drift.
A dead letter's number is its offset in ``<namespace>.dead-letters``, which has one partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kafka import KafkaProducer

from hamster.errors import UnknownDeadLetter
from hamster.settings import Settings
from streams.dead_letter_codec import DeadLetter, decode_dead_letter
from streams.kafka_python import connect
from streams.reader import read_topic
from streams.topics import dead_letters_topic


@dataclass(frozen=True)
class Replayed:
    """Where dead letter ``number``'s original record landed when it was sent back."""

    number: int
    topic: str
    partition: int
    offset: int


def _records(settings: Settings) -> dict[int, bytes]:
    return {r.offset: r.value for r in read_topic(settings.kafka, dead_letters_topic(settings))}


def read_dead_letters(settings: Settings) -> list[tuple[int, DeadLetter]]:
    """Every dead letter now in the topic with its number, oldest first. Raises ``BrokerError``."""
    return [(number, decode_dead_letter(raw)) for number, raw in _records(settings).items()]


def set_aside_already(settings: Settings, topic: str, partition: int, offset: int, since_ms: int) -> bool:
    """Whether the record at ``topic``/``partition``/``offset`` is a dead letter already (one written since
    ``since_ms``): every worker reads the stage topics, and one that restarts meets old records again."""
    for record in read_topic(settings.kafka, dead_letters_topic(settings), since_ms=since_ms):
        letter = decode_dead_letter(record.value)
        if (letter.source_topic, letter.partition, letter.offset) == (topic, partition, offset):
            return True
    return False


def replay_dead_letters(settings: Settings, numbers: Iterable[int] | None) -> Iterator[Replayed]:
    """Send dead letters ``numbers`` (None: every one) back to their source topics, in that order.

    Raises ``UnknownDeadLetter`` here, before anything is sent, if a number is not in the topic (and
    ``BrokerError`` if the topic cannot be read). The iterator then sends one record at a time, yielding
    each once Kafka acknowledged it (``acks=all``), so a failure part-way leaves the ones yielded sent.
    """
    records = _records(settings)
    wanted = sorted(records) if numbers is None else list(numbers)
    unknown = [n for n in wanted if n not in records]
    if unknown:
        raise UnknownDeadLetter(unknown)
    return _send(settings, [(n, records[n]) for n in wanted])


def _send(settings: Settings, chosen: list[tuple[int, bytes]]) -> Iterator[Replayed]:
    producer = connect(KafkaProducer, settings.kafka, acks="all")
    try:
        for number, raw in chosen:
            letter = decode_dead_letter(raw)
            # The original key, so the record lands on the partition it came from.
            sent = producer.send(letter.source_topic, key=letter.key, value=letter.value).get(timeout=30)
            yield Replayed(number, sent.topic, sent.partition, sent.offset)
    finally:
        producer.close()
