"""Create Hamster's topics with kafka-python's admin client (idempotent: existing topics are left alone)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from hamster.errors import BrokerError, ConfigurationError
from hamster.kafka_access import KafkaAccess
from streams import replication
from streams.kafka_python import connect
from streams.replication import Replication
from streams.topics import TopicSpec

log = logging.getLogger(__name__)


def ensure_topics(
    kafka: KafkaAccess,
    specs: Iterable[TopicSpec],
    timeout_s: float = 30.0,
    *,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    New topics get ``replication_factor`` replicas and ``min_insync_replicas`` (``None``: the defaults for
    the brokers the cluster reports, see ``streams.replication``); more replicas than brokers up is an
    error when a topic must be created, and no obstacle when all exist. An existing topic with another
    partition count is an error, not something to paper over: the per-run topics must stay
    co-partitioned. One with fewer replicas, or a lower ``min.insync.replicas``, than wanted is an error
    when the setting was given, and a warning when it is the default (a cluster grown from one broker keeps
    its topics working, and the log says which ones a broker's loss can take data from).
    """
    specs = list(specs)
    with _admin(kafka, timeout_s) as admin:
        brokers = _brokers(admin)
        wanted = replication.resolve(brokers, replication_factor, min_insync_replicas)
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        replication.check_placeable(wanted, brokers, [s.name for s in missing])
        created: list[str] = []
        for spec in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            spec.partitions,
                            wanted.factor,
                            topic_configs={**spec.configs(), **wanted.topic_config()},
                        )
                    ],
                    timeout_ms=int(timeout_s * 1000),
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        present = [s for s in specs if s.name in existing]
        if present:
            described = {t["name"]: t for t in admin.describe_topics([s.name for s in present])}
            for spec in present:
                partitions = len(described[spec.name]["partitions"]) if spec.name in described else None
                if partitions not in (None, spec.partitions):
                    raise BrokerError(
                        f"topic {spec.name} has {partitions} partitions, Hamster expects "
                        f"{spec.partitions} (HAMSTER_PARTITIONS): per-run topics must be co-partitioned"
                    )
            _check_replication(
                admin, described, wanted, replication_factor is not None, min_insync_replicas is not None
            )
        if created:
            log.info(
                "created topics (%d replicas, min.insync.replicas=%d): %s",
                wanted.factor,
                wanted.min_insync,
                ", ".join(created),
            )
        return created


def topic_replication(
    kafka: KafkaAccess,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    timeout_s: float = 30.0,
) -> Replication:
    """The replication topics get on this cluster: the settings given, else the defaults for its brokers."""
    with _admin(kafka, timeout_s) as admin:
        return replication.resolve(_brokers(admin), replication_factor, min_insync_replicas)


def publish_subscriber_change(kafka: KafkaAccess, topic: str, name: str, change: bytes) -> None:
    """Append one subscriber change (enable/disable) and wait until the broker acknowledged it."""
    from kafka import KafkaProducer

    producer = connect(KafkaProducer, kafka, acks="all")
    try:
        producer.send(topic, key=name.encode(), value=change).get(timeout=30)
    finally:
        producer.close()


@contextmanager
def _admin(kafka: KafkaAccess, timeout_s: float) -> Iterator[KafkaAdminClient]:
    """An admin client made through ``streams.kafka_python`` (``BrokerError`` when it cannot start)."""
    admin = connect(
        KafkaAdminClient,
        kafka,
        request_timeout_ms=int(timeout_s * 1000),
        bootstrap_timeout_ms=int(timeout_s * 1000),
        client_id="hamster-admin",
    )
    try:
        yield admin
    finally:
        admin.close()


def _brokers(admin: KafkaAdminClient) -> int:
    """The brokers the cluster lists: those up (a dead broker drops out once the controller fences it)."""
    return len(admin.describe_cluster()["brokers"])


def _check_replication(
    admin: KafkaAdminClient,
    described: dict[str, Any],
    wanted: Replication,
    factor_given: bool,
    min_insync_given: bool,
) -> None:
    """Compare existing topics' replicas and min.insync.replicas with ``wanted``: error if asked, or warn."""
    replicas = {
        name: min((len(p["replica_nodes"]) for p in topic["partitions"]), default=0)
        for name, topic in described.items()
    }
    min_insync = _min_insync(admin, list(described))
    blocked = replication.unwritable(replicas, min_insync)
    if blocked:
        raise ConfigurationError(
            f"existing topics refuse every write (NOT_ENOUGH_REPLICAS): {'; '.join(blocked)}. Lower their "
            "min.insync.replicas with kafka-configs.sh, or add replicas with kafka-reassign-partitions.sh"
        )
    few_replicas = replication.short_of_replicas(replicas, wanted)
    few_insync = replication.short_of_insync(min_insync, wanted)
    advice = (
        "Add replicas with kafka-reassign-partitions.sh and set min.insync.replicas with kafka-configs.sh "
        "(https://kafka.apache.org/documentation/#basic_ops_increase_replication_factor), "
        "or start in a new HAMSTER_NAMESPACE"
    )
    if (few_replicas and factor_given) or (few_insync and min_insync_given):
        raise ConfigurationError(
            "existing topics are replicated less than HAMSTER_REPLICATION_FACTOR / "
            f"HAMSTER_MIN_INSYNC_REPLICAS ask: {'; '.join(few_replicas + few_insync)}. {advice}"
        )
    if few_replicas or few_insync:
        log.warning(
            "existing topics are replicated less than this cluster's default (%d replicas, "
            "min.insync.replicas=%d): a lost broker can lose what they hold: %s. %s",
            wanted.factor,
            wanted.min_insync,
            "; ".join(few_replicas + few_insync),
            advice,
        )


def _min_insync(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Each topic's effective min.insync.replicas (its own, else the broker's default)."""
    # A list of keys is the describe form kafka-python documents; its stubs know only the alter form (a dict).
    keys = ["min.insync.replicas"]
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, keys) for name in names]  # type: ignore[arg-type]
    found = admin.describe_configs(resources, config_filter="all").get("topic", {})
    return {
        name: int(configs["min.insync.replicas"]["value"])
        for name, configs in found.items()
        if "min.insync.replicas" in configs
    }
