"""A real local Kafka without Docker: ``hamster broker start|stop|status`` and the test suite's broker.

Kafka 4.1 runs from its Maven jars in KRaft combined mode on loopback, one node or a cluster of several
(``--nodes 3``), with its files under ``HAMSTER_HOME``. The modules, from pure to effectful:

    config.py       ports, cluster id, server.properties, java command lines (pure)
    log_excerpt.py  what of the log to show when a start fails (pure)
    jars.py         find java; fetch and cache Kafka's jars with Maven
    probe.py        is a node answering? (ApiVersions, then its own metadata: cluster id, brokers)
    process.py      pid file, liveness, SIGTERM-then-SIGKILL, the start/stop lock
    local.py        LocalBroker, which puts them together (one JVM per node)
"""

from hamster.broker.config import KAFKA_VERSION
from hamster.broker.local import BrokerStatus, LocalBroker, NodeStatus

__all__ = ["KAFKA_VERSION", "BrokerStatus", "LocalBroker", "NodeStatus"]
