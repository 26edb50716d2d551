"""How topics are replicated: the defaults for the brokers found, the settings over them, existing topics."""

from __future__ import annotations

import pytest

from hamster.errors import ConfigurationError
from hamster.settings import load_settings
from streams.replication import (
    Replication,
    check_placeable,
    resolve,
    short_of_insync,
    short_of_replicas,
    unwritable,
)


@pytest.mark.parametrize(
    ("brokers", "wanted"),
    [(1, Replication(1, 1)), (2, Replication(2, 1)), (3, Replication(3, 2)), (5, Replication(3, 2))],
)
def test_defaults_follow_the_broker_count(brokers, wanted):
    """One broker: 1 replica, 1 in sync; three or more: 3 replicas, 2 in sync (two brokers: 2 and 1)."""
    assert resolve(brokers) == wanted


def test_settings_override_the_defaults():
    """A factor given takes all but one replica in sync by default; a min ISR given is taken as it is."""
    assert resolve(5, factor=5) == Replication(5, 4)
    assert resolve(3, factor=2) == Replication(2, 1)
    assert resolve(3, min_insync=1) == Replication(3, 1)
    assert resolve(3, factor=3, min_insync=3) == Replication(3, 3)


def test_creating_topics_with_more_replicas_than_brokers_is_refused_with_the_setting_named():
    """Kafka could not place them: refused naming the setting and the topics; nothing to create, no error
    (a worker restarts while a broker of three is down, its topics all there)."""
    wanted = resolve(2, factor=3)
    assert wanted == Replication(3, 2)
    with pytest.raises(
        ConfigurationError, match=r"HAMSTER_REPLICATION_FACTOR: 3 replicas asked.* 2 brokers up, so a, b"
    ):
        check_placeable(wanted, 2, ["a", "b"])
    check_placeable(wanted, 2, [])
    check_placeable(wanted, 3, ["a"])


def test_more_in_sync_than_replicas_is_refused():
    """min.insync.replicas above the factor would refuse every write."""
    with pytest.raises(ConfigurationError, match="HAMSTER_MIN_INSYNC_REPLICAS: 3 is more than the 2"):
        resolve(3, factor=2, min_insync=3)
    with pytest.raises(ConfigurationError, match="HAMSTER_MIN_INSYNC_REPLICAS: 2 is more than the 1"):
        resolve(1, min_insync=2)


def test_settings_refuse_more_in_sync_than_replicas():
    """Both settings given and inconsistent: one line naming both, before anything starts."""
    with pytest.raises(
        ConfigurationError, match="HAMSTER_MIN_INSYNC_REPLICAS: 3 is more than HAMSTER_REPLICATION"
    ):
        load_settings(replication_factor=2, min_insync_replicas=3)
    settings = load_settings(replication_factor=3, min_insync_replicas=2)
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    assert load_settings().replication_factor is None


def test_settings_refuse_zero_replicas():
    """A topic has at least one replica."""
    with pytest.raises(ConfigurationError, match="HAMSTER_REPLICATION_FACTOR"):
        load_settings(replication_factor=0)


def test_topic_config_carries_min_insync_replicas():
    """min.insync.replicas is a topic config; the factor is not (it is given at creation)."""
    assert Replication(3, 2).topic_config() == {"min.insync.replicas": "2"}


def test_existing_topics_short_of_replicas_are_named():
    """Topics with fewer replicas (or a lower min ISR) than wanted are listed; equal or more are fine."""
    wanted = Replication(3, 2)
    assert short_of_replicas({"a": 1, "b": 3, "c": 4, "d": 2}, wanted) == [
        "topic a has 1 replica per partition, 3 wanted",
        "topic d has 2 replicas per partition, 3 wanted",
    ]
    assert short_of_insync({"a": 1, "b": 2, "c": 3}, wanted) == [
        "topic a has min.insync.replicas=1, 2 wanted"
    ]
    assert short_of_replicas({"a": 1}, Replication(1, 1)) == []


def test_topics_asking_more_in_sync_than_they_have_are_named():
    """A topic whose min.insync.replicas exceeds its replicas refuses every write: it is named."""
    assert unwritable({"a": 1, "b": 3, "c": 2}, {"a": 2, "b": 2, "c": 2}) == [
        "topic a has min.insync.replicas=2 but 1 replica"
    ]
