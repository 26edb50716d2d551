"""A real three-node Kafka cluster (`hamster broker start --nodes 3`): replicated topics, checked at start.

The cluster listens on ``$HAMSTER_TEST_KAFKA_CLUSTER_PORT`` (default 29600), +2 and +4 (controllers on the
ports above each), away from the suite's single broker.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from hamster.errors import ConfigurationError
from hamster.kafka_access import KafkaAccess
from hamster.settings import load_settings
from streams.admin import ensure_topics, topic_replication
from streams.topics import events_topic, leader_topic, topic_specs
from tests.integration.system import wait_until

pytestmark = pytest.mark.integration

PORT = int(os.environ.get("HAMSTER_TEST_KAFKA_CLUSTER_PORT", "29600"))
NOT_RUNNING = 3


def hamster(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The venv's console script, as a user runs it, against the cluster's first port."""
    cli = Path(sys.executable).with_name("hamster")
    return subprocess.run(
        [str(cli), *args],
        env={**os.environ, "HAMSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{PORT}", "HAMSTER_HOME": str(home), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(home, bootstrap) of a three-node cluster started through the CLI; stopped, all nodes, after."""
    home = tmp_path_factory.mktemp("cluster-home")
    try:
        started = hamster(home, "broker", "start", "--nodes", "3", "--timeout", "120")
        assert started.returncode == 0, started.stderr
        bootstrap = ",".join(f"127.0.0.1:{PORT + 2 * n}" for n in range(3))
        assert started.stdout.startswith(f"cluster of 3 nodes running on {bootstrap} (pids ")
        yield home, bootstrap
    finally:
        hamster(home, "broker", "stop")


def describe(bootstrap: str, names: list[str]) -> dict[str, tuple[int, int, int]]:
    """topic → (partitions, fewest replicas of a partition, min.insync.replicas), from the admin API."""
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        # A topic just created reaches every broker's metadata a moment later.
        def ready() -> list[dict[str, Any]] | None:
            topics = admin.describe_topics(names)
            return topics if len(topics) == len(names) and all(t["partitions"] for t in topics) else None

        topics = wait_until(ready, 30, 0.2, "the topics in the metadata")
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, ["min.insync.replicas"]) for name in names],
            config_filter="all",
        )["topic"]
    return {
        t["name"]: (
            len(t["partitions"]),
            min(len(p["replica_nodes"]) for p in t["partitions"]),
            int(configs[t["name"]]["min.insync.replicas"]["value"]),
        )
        for t in topics
    }


def test_status_shows_each_node_and_the_bootstrap_lists_all(cluster):
    """status names the three nodes, each answering on its own port with its own data dir and log."""
    home, bootstrap = cluster
    status = hamster(home, "broker", "status")
    assert status.returncode == 0, status.stdout
    lines = status.stdout.splitlines()
    assert lines[0].startswith(f"cluster of 3 nodes on {bootstrap} ") and lines[0].endswith(
        "3 of 3 answering"
    )
    for n in range(1, 4):
        port = PORT + 2 * (n - 1)
        assert re.fullmatch(
            rf"  node {n}: running on 127\.0\.0\.1:{port} \(Kafka [\d.]+, pid \d+, "
            rf"data {re.escape(str(home / 'kafka' / f'node-{n}'))}, "
            rf"log {re.escape(str(home / 'logs' / f'node-{n}' / 'server.log'))}\)",
            lines[n],
        )


def test_a_cluster_home_is_not_started_as_one_node(cluster):
    """start --nodes 1 on a home holding three nodes is refused; the cluster keeps running."""
    home, _ = cluster
    refused = hamster(home, "broker", "start", "--nodes", "1")
    assert refused.returncode == 1
    assert "holds a cluster of 3 nodes, not 1" in refused.stderr
    assert hamster(home, "broker", "status").returncode == 0


def test_topics_get_three_replicas_two_in_sync_by_default(cluster):
    """With three brokers and no setting, every topic (Faust's leader topic too) has 3 replicas, min ISR 2."""
    _, bootstrap = cluster
    settings = load_settings(kafka_bootstrap=bootstrap, namespace="c" + uuid.uuid4().hex[:10])
    specs = topic_specs(settings, ["lint"])
    assert topic_replication(KafkaAccess(bootstrap)).factor == 3
    created = ensure_topics(KafkaAccess(bootstrap), specs)
    assert sorted(created) == sorted(s.name for s in specs)
    found = describe(bootstrap, [s.name for s in specs])
    assert found == {s.name: (s.partitions, 3, 2) for s in specs}
    assert found[leader_topic(settings)] == (1, 3, 2)


def test_settings_set_replicas_and_min_insync(cluster):
    """HAMSTER_REPLICATION_FACTOR=2 / HAMSTER_MIN_INSYNC_REPLICAS=1 are what new topics get."""
    _, bootstrap = cluster
    settings = load_settings(kafka_bootstrap=bootstrap, namespace="c" + uuid.uuid4().hex[:10])
    specs = topic_specs(settings)[:2]
    ensure_topics(KafkaAccess(bootstrap), specs, replication_factor=2, min_insync_replicas=1)
    assert describe(bootstrap, [s.name for s in specs]) == {s.name: (s.partitions, 2, 1) for s in specs}


def test_an_existing_single_replica_topic_warns_by_default_and_fails_when_asked(cluster, caplog):
    """A topic made with one replica: the default start warns naming it; an explicit factor 3 is an error,
    in ensure_topics and in a real `hamster worker` start (exit 2, one line); asking for 1 is fine."""
    home, bootstrap = cluster
    namespace = "c" + uuid.uuid4().hex[:10]
    settings = load_settings(kafka_bootstrap=bootstrap, namespace=namespace)
    events = events_topic(settings)
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        # As Hamster made it on one broker, before the cluster grew.
        admin.create_topics(
            [NewTopic(events, settings.partitions, 1, topic_configs={"min.insync.replicas": "1"})]
        )

    with caplog.at_level(logging.WARNING, logger="streams.admin"):
        ensure_topics(KafkaAccess(bootstrap), topic_specs(settings))
    warnings = [r.getMessage() for r in caplog.records if r.name == "streams.admin"]
    assert len(warnings) == 1
    assert f"topic {events} has 1 replica per partition, 3 wanted" in warnings[0]
    assert f"topic {events} has min.insync.replicas=1, 2 wanted" in warnings[0]
    assert "kafka-reassign-partitions.sh" in warnings[0]

    with pytest.raises(ConfigurationError, match=f"topic {events} has 1 replica per partition, 3 wanted"):
        ensure_topics(KafkaAccess(bootstrap), topic_specs(settings), replication_factor=3)
    # Asked for what it has: fine.
    ensure_topics(KafkaAccess(bootstrap), topic_specs(settings), replication_factor=1, min_insync_replicas=1)

    worker = hamster(
        home,
        "worker",
        HAMSTER_KAFKA_BOOTSTRAP=bootstrap,
        HAMSTER_NAMESPACE=namespace,
        HAMSTER_SUBSCRIBERS="hamster.examples",
        HAMSTER_REPLICATION_FACTOR="3",
    )
    assert worker.returncode == 2, worker.stderr
    assert f"topic {events} has 1 replica per partition, 3 wanted" in worker.stderr
    assert describe(bootstrap, [events])[events] == (settings.partitions, 1, 1)  # left as it was


def test_more_replicas_than_brokers_is_refused(cluster):
    """Four replicas on three brokers: refused before any topic is created, naming the setting."""
    _, bootstrap = cluster
    settings = load_settings(kafka_bootstrap=bootstrap, namespace="c" + uuid.uuid4().hex[:10])
    with pytest.raises(
        ConfigurationError, match="HAMSTER_REPLICATION_FACTOR: 4 replicas asked, but the cluster lists 3"
    ):
        ensure_topics(KafkaAccess(bootstrap), topic_specs(settings), replication_factor=4)
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        assert not [t for t in admin.list_topics() if t.startswith(settings.namespace)]


def test_a_topic_that_refuses_every_write_is_an_error(cluster):
    """One replica but min.insync.replicas 2 (the cluster's default for topics made without it): an
    error whatever the settings, since Kafka would refuse every write to it."""
    _, bootstrap = cluster
    settings = load_settings(kafka_bootstrap=bootstrap, namespace="c" + uuid.uuid4().hex[:10])
    events = events_topic(settings)
    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        admin.create_topics([NewTopic(events, settings.partitions, 1)])
    with pytest.raises(ConfigurationError, match=f"topic {events} has min.insync.replicas=2 but 1 replica"):
        ensure_topics(KafkaAccess(bootstrap), topic_specs(settings), replication_factor=1)


def test_stop_stops_every_node(cluster):
    """stop ends all three JVMs at once (listed), each cleanly; status then says none answers (exit 3)."""
    home, _ = cluster
    pids = [int(p) for p in re.findall(r"pid (\d+)", hamster(home, "broker", "status").stdout)]
    assert len(pids) == 3
    stopped = hamster(home, "broker", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"broker stopped (pids {', '.join(map(str, pids))})\n"
    for n in range(1, 4):
        assert (home / "kafka" / f"node-{n}" / "data" / ".kafka_cleanshutdown").exists()
    after = hamster(home, "broker", "status")
    assert after.returncode == NOT_RUNNING
    assert after.stdout.splitlines()[0].endswith("0 of 3 answering")
