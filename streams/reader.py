"""Read a topic from its start to its current end with kafka-python (for the CLI: listings, history)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from hamster.errors import BrokerError


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> Iterator[Any]:
    """Every record now in ``topic``, partition by partition, in offset order; stops at the current end."""
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=int(timeout_s * 1000),
            client_id="hamster-reader",
        )
    except Exception as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends = consumer.end_offsets(assigned)
        for tp in assigned:
            if ends[tp] == 0:
                continue
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            while consumer.position(tp) < ends[tp]:
                for records in consumer.poll(timeout_ms=1000).values():
                    for record in records:
                        if record.offset < ends[tp]:
                            yield record
    finally:
        consumer.close()
