"""How many copies of each topic the cluster keeps, and how many must have a write before it counts. Pure.

``acks=all`` (every producer Hamster has) means "acknowledged by every replica in sync", and a topic with
one replica has only its leader in sync: when that broker's disk is gone, so is the acknowledged record.
A record survives the loss of a broker only if the topic has more replicas than that and the broker refuses
writes that fewer than ``min.insync.replicas`` of them hold:
https://kafka.apache.org/documentation/#design_ha and
https://kafka.apache.org/documentation/#topicconfigs_min.insync.replicas

The defaults follow the broker count the cluster reports: one broker, one replica; three or more, three
replicas of which two must hold a write (one broker can be down, or restarting, and writes go on and keep
two copies). ``HAMSTER_REPLICATION_FACTOR`` and ``HAMSTER_MIN_INSYNC_REPLICAS`` override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hamster.errors import ConfigurationError

# Three copies outlive one broker down and one more lost disk; more copies cost writes and space.
MAX_DEFAULT_FACTOR = 3


@dataclass(frozen=True)
class Replication:
    """Replicas per partition (``replication.factor``) and ``min.insync.replicas`` of a topic."""

    factor: int
    min_insync: int

    def topic_config(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


# One broker's: what a topic gets when nothing asked the cluster.
SINGLE = Replication(1, 1)


def default_factor(brokers: int) -> int:
    """As many replicas as brokers, up to three."""
    return max(1, min(brokers, MAX_DEFAULT_FACTOR))


def default_min_insync(factor: int) -> int:
    """All but one replica (at least one): a write goes on with one replica down, never with fewer."""
    return max(1, factor - 1)


def resolve(brokers: int, factor: int | None = None, min_insync: int | None = None) -> Replication:
    """The replication for a cluster of ``brokers`` brokers; ``None`` takes the default for it."""
    wanted = default_factor(brokers) if factor is None else factor
    insync = default_min_insync(wanted) if min_insync is None else min_insync
    if insync > wanted:
        raise ConfigurationError(
            f"HAMSTER_MIN_INSYNC_REPLICAS: {insync} is more than the {wanted} replicas of each topic "
            "(HAMSTER_REPLICATION_FACTOR): every write would be refused"
        )
    return Replication(wanted, insync)


def check_placeable(wanted: Replication, brokers: int, topics: list[str]) -> None:
    """Refuse to create ``topics`` with more replicas than brokers up, naming the setting, rather than let
    Kafka refuse them (``INVALID_REPLICATION_FACTOR``) or create them weaker than asked."""
    if topics and wanted.factor > brokers:
        raise ConfigurationError(
            f"HAMSTER_REPLICATION_FACTOR: {wanted.factor} replicas asked, but the cluster lists {brokers} "
            f"broker{'s' if brokers != 1 else ''} up, so {', '.join(topics)} cannot be created: lower it, "
            "or start again once the brokers are back"
        )


def short_of_replicas(replicas: Mapping[str, int], wanted: Replication) -> list[str]:
    """One line per topic with fewer replicas than wanted (``replicas``: the fewest of any partition)."""
    return [
        f"topic {name} has {count} replica{'s' if count != 1 else ''} per partition, {wanted.factor} wanted"
        for name, count in replicas.items()
        if count < wanted.factor
    ]


def short_of_insync(min_insync: Mapping[str, int], wanted: Replication) -> list[str]:
    """One line per topic whose ``min.insync.replicas`` is below the one wanted."""
    return [
        f"topic {name} has min.insync.replicas={count}, {wanted.min_insync} wanted"
        for name, count in min_insync.items()
        if count < wanted.min_insync
    ]


def unwritable(replicas: Mapping[str, int], min_insync: Mapping[str, int]) -> list[str]:
    """One line per topic that asks more replicas in sync than it has: Kafka refuses every write to it."""
    return [
        f"topic {name} has min.insync.replicas={min_insync[name]} but {count} "
        f"replica{'s' if count != 1 else ''}"
        for name, count in replicas.items()
        if name in min_insync and min_insync[name] > count
    ]
