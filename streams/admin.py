"""Create Hamster's topics with kafka-python's admin client (idempotent: existing topics are left alone)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from hamster.errors import BrokerError
from hamster.kafka_access import KafkaAccess
from streams.kafka_python import connect
from streams.topics import TopicSpec

log = logging.getLogger(__name__)


def ensure_topics(kafka: KafkaAccess, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    An existing topic with another partition count is an error, not something to paper over: the
    per-run topics must stay co-partitioned.
    """
    specs = list(specs)
    admin = connect(
        KafkaAdminClient,
        kafka,
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
        client_id="hamster-admin",
    )
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        for spec in missing:
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.configs())],
                    timeout_ms=int(timeout_s * 1000),
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        present = [s for s in specs if s.name in existing]
        if present:
            described = {
                t["name"]: len(t["partitions"]) for t in admin.describe_topics([s.name for s in present])
            }
            for spec in present:
                if described.get(spec.name, spec.partitions) != spec.partitions:
                    raise BrokerError(
                        f"topic {spec.name} has {described[spec.name]} partitions, Hamster expects "
                        f"{spec.partitions} (HAMSTER_PARTITIONS): per-run topics must be co-partitioned"
                    )
        if created:
            log.info("created topics: %s", ", ".join(created))
        return created
    finally:
        admin.close()


def publish_subscriber_change(kafka: KafkaAccess, topic: str, name: str, change: bytes) -> None:
    """Append one subscriber change (enable/disable) and wait until the broker acknowledged it."""
    from kafka import KafkaProducer

    producer = connect(KafkaProducer, kafka, acks="all")
    try:
        producer.send(topic, key=name.encode(), value=change).get(timeout=30)
    finally:
        producer.close()
