"""The local broker's configuration, as pure functions: ports, cluster id, server.properties, commands.

Kafka runs in KRaft combined mode (each JVM is both broker and controller) on loopback only, with a static
controller quorum of one voter per node: https://kafka.apache.org/documentation/#kraft_config. One node by
default; ``hamster broker start --nodes 3`` runs three, whose three controllers elect a leader among
themselves, so the cluster goes on with any one node down.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hamster.errors import ConfigurationError
from streams import replication
from streams.topics import MAX_MESSAGE_BYTES

KAFKA_VERSION = "4.1.1"
HEAP = "512m"
NODE_ID = 1
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

# Kafka's own default, stated so the relation to MAX_MESSAGE_BYTES is visible: a produce request carries at
# least one whole record batch, so this must stay well above message.max.bytes.
# https://kafka.apache.org/documentation/#brokerconfigs_socket.request.max.bytes
SOCKET_REQUEST_MAX_BYTES = 100 * 1024 * 1024

# What Kafka's bin/kafka-run-class.sh passes to the JVM besides heap, classpath and logging.
JVM_FLAGS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)


def listen_host(host: str) -> str:
    """The loopback address to bind for the bootstrap ``host``; a host that is not loopback is refused.

    ``localhost`` becomes 127.0.0.1 so the advertised address does not depend on how clients resolve it.
    """
    bare = host.strip("[]")
    if bare == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ConfigurationError(
            f"HAMSTER_KAFKA_BOOTSTRAP: the local broker listens on loopback only, not on {host!r} "
            "(use 127.0.0.1:<port>, or point Hamster at your own Kafka and skip `hamster broker`)"
        )
    return f"[{bare}]" if address.version == 6 else bare


def controller_port(port: int) -> int:
    """The KRaft controller listens right above the client port."""
    if port >= 65535:
        raise ConfigurationError(f"HAMSTER_KAFKA_BOOTSTRAP: port {port} leaves no room for the controller")
    return port + 1


def node_ports(port: int, nodes: int, listed: Sequence[int] = ()) -> list[int]:
    """The client port of each node: ``listed`` (the bootstrap's ports) if it names one per node, else
    ``port``, ``port + 2``, … (each node's controller takes the port above its own)."""
    if nodes < 1:
        raise ConfigurationError(f"a cluster needs at least one node, not {nodes}")
    ports = list(listed) if len(listed) == nodes else [port + 2 * i for i in range(nodes)]
    for p in ports:
        controller_port(p)
    taken = ports + [controller_port(p) for p in ports]
    if len(set(taken)) != len(taken):
        raise ConfigurationError(
            f"HAMSTER_KAFKA_BOOTSTRAP: ports {', '.join(map(str, ports))} leave no room for each node's "
            "controller on the port above it (list ports at least two apart)"
        )
    return ports


def new_cluster_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A cluster id as Kafka's ``Uuid.randomUuid()`` makes one: 16 random bytes, URL-safe base64, no padding.

    Kafka never hands out an id starting with "-" (it would read as a command-line flag):
    https://github.com/apache/kafka/blob/4.1/clients/src/main/java/org/apache/kafka/common/Uuid.java
    """
    while True:
        raw = bytearray(random_bytes(16))
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # IETF variant
        encoded = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
        if not encoded.startswith("-"):
            return encoded


SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
BROKER_USER = "broker"  # the broker's own SASL user, for its inter-broker client (unused with one node)


@dataclass(frozen=True)
class SecureListener:
    """The client listener as SASL_SSL instead of PLAINTEXT: TLS with this key and certificate (PEM), and
    SASL users who may log in with PLAIN or SCRAM (their SCRAM credentials are made when the storage is
    formatted). The controller listener stays plaintext on loopback: only the cluster's own nodes speak to it.
    A cluster's nodes share one ``SecureListener`` (its broker password is their inter-broker login).

    https://kafka.apache.org/documentation/#security_sasl_scram and #security_ssl (PEM: KIP-651).
    """

    certfile: Path  # the broker's certificate chain, naming the bootstrap host (SAN)
    keyfile: Path  # its unencrypted PKCS#8 key
    cafile: Path  # what the broker's own client trusts
    users: Mapping[str, str] = field(default_factory=dict)  # name → password
    # PLAIN too: Kafka's PlainLoginModule then holds every password in clear in server.properties, so it is
    # off unless asked for; SCRAM keeps only salted hashes, in the cluster metadata.
    plain: bool = False
    broker_password: str = field(default_factory=lambda: os.urandom(16).hex(), repr=False)

    def all_users(self) -> dict[str, str]:
        return {BROKER_USER: self.broker_password, **self.users}


def _jaas_quote(value: str) -> str:
    # JAAS option values are double-quoted; refuse what would end or escape the quotes rather than escape it.
    if not value or any(c in value for c in '"\\;\n\r'):
        raise ConfigurationError(f"a SASL user name or password may not be empty or hold quotes: {value!r}")
    return f'"{value}"'


def secure_listener_config(listener: SecureListener, keystore: Path) -> dict[str, str]:
    """The properties that make the ``SASL_SSL`` listener: TLS, mechanisms, and who may log in."""
    me = f"username={_jaas_quote(BROKER_USER)} password={_jaas_quote(listener.broker_password)}"
    plain: dict[str, str] = {}
    if listener.plain:
        users = " ".join(f"user_{name}={_jaas_quote(pw)}" for name, pw in listener.all_users().items())
        plain["listener.name.sasl_ssl.plain.sasl.jaas.config"] = (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {me} {users};"
        )
    mechanisms = ("PLAIN", *SCRAM_MECHANISMS) if listener.plain else SCRAM_MECHANISMS
    return {
        "sasl.enabled.mechanisms": ",".join(mechanisms),
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        **plain,
        **{
            f"listener.name.sasl_ssl.{m.lower()}.sasl.jaas.config": (
                f"org.apache.kafka.common.security.scram.ScramLoginModule required {me};"
            )
            for m in SCRAM_MECHANISMS
        },
        # A PEM keystore file holds the key, then the certificate chain (LocalBroker writes it).
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(listener.cafile),
    }


def scram_arguments(listener: SecureListener) -> list[str]:
    """``kafka-storage format --add-scram`` arguments: every user, for both SCRAM mechanisms."""
    arguments: list[str] = []
    for name, password in listener.all_users().items():
        if any(c in name + password for c in ',[]="\\ \n'):  # the format tool's own [k=v,k=v] syntax
            raise ConfigurationError(
                f"SASL user {name!r}: the name and password may not hold , [ ] = or quotes"
            )
        for mechanism in SCRAM_MECHANISMS:
            arguments += ["--add-scram", f"{mechanism}=[name={name},password={password}]"]
    return arguments


def server_config(
    host: str,
    port: int,
    log_dirs: Path,
    *,
    node_id: int = NODE_ID,
    cluster_ports: Sequence[int] = (),
    secure: SecureListener | None = None,
    keystore: Path | None = None,
) -> dict[str, str]:
    """server.properties for a combined broker and controller bound to ``host``.

    Alone by default; ``cluster_ports`` (the client ports of every node, node ids 1, 2, … in that order)
    makes it node ``node_id`` of a cluster. With ``secure``, clients (and the other nodes' brokers) have
    only a SASL_SSL listener on ``port``, with the PEM ``keystore``.
    """
    ports = list(cluster_ports) or [port]
    if node_id < 1 or node_id > len(ports) or ports[node_id - 1] != port:
        raise ConfigurationError(f"node {node_id} on port {port} is not one of the cluster's {ports}")
    controller = f"{host}:{controller_port(port)}"
    client = "SASL_SSL" if secure is not None else "PLAINTEXT"
    # Kafka's own topics (consumer offsets, transactions) are replicated like Hamster's.
    internal = replication.resolve(len(ports))
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        # A static quorum (controller.quorum.voters) needs no `format --standalone` or
        # `--initial-controllers`, whatever the number of nodes:
        # https://kafka.apache.org/documentation/#static_versus_dynamic_kraft_quorums
        "controller.quorum.voters": ",".join(
            f"{n}@{host}:{controller_port(p)}" for n, p in enumerate(ports, start=1)
        ),
        "listeners": f"{client}://{host}:{port},CONTROLLER://{controller}",
        "advertised.listeners": f"{client}://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{client}:{client}",
        **(secure_listener_config(secure, keystore or log_dirs / "keystore.pem") if secure else {}),
        "log.dirs": str(log_dirs),
        # Hamster creates every topic itself with the partition count co-partitioning needs (streams.topics).
        "auto.create.topics.enable": "false",
        # A GitHub payload can be 25 MiB; the default limit is about 1 MiB.
        # https://kafka.apache.org/documentation/#brokerconfigs_message.max.bytes
        "message.max.bytes": str(MAX_MESSAGE_BYTES),
        "socket.request.max.bytes": str(SOCKET_REQUEST_MAX_BYTES),
        # One broker: internal topics cannot have more than one replica; three: three, two in sync.
        "offsets.topic.replication.factor": str(internal.factor),
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": str(internal.factor),
        "transaction.state.log.min.isr": str(internal.min_insync),
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": str(internal.factor),
        "share.coordinator.state.topic.min.isr": str(internal.min_insync),
        # Tests and `hamster dev` start consumers right away; the default 3 s delay only slows them down.
        "group.initial.rebalance.delay.ms": "0",
        # A small machine: the defaults size these for production brokers.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "2",
        **(_cluster_defaults(internal) if len(ports) > 1 else {}),
    }


def _cluster_defaults(internal: replication.Replication) -> dict[str, str]:
    """What a topic created by someone else than Hamster gets on a cluster (Hamster sets its own)."""
    return {
        "default.replication.factor": str(internal.factor),
        "min.insync.replicas": str(internal.min_insync),
        # A partition whose replicas all died waits for one of them rather than electing a replica that
        # missed acknowledged writes (Kafka's default, stated because the promise depends on it).
        "unclean.leader.election.enable": "false",
        # `hamster broker stop` stops every node at once: a controlled shutdown waits for the controller
        # quorum to move leaders away, and the last nodes to stop wait for a quorum that is already gone
        # (up to the shutdown timeout, minutes). Leaders of a node killed alone move once the controller
        # sees its session end either way (broker.session.timeout.ms).
        "controlled.shutdown.enable": "false",
    }


def render_properties(config: Mapping[str, str]) -> str:
    """Java properties text. Values are paths and plain words; only backslashes need escaping."""
    lines = [f"{key}={_escape(value)}" for key, value in config.items()]
    return "\n".join(
        ["# Written by `hamster broker start` on every start; edits are overwritten.", *lines, ""]
    )


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\")


def _jvm(java: str, lib_dir: Path, log4j_config: Path, logs_dir: Path) -> list[str]:
    return [
        java,
        f"-Xmx{HEAP}",
        f"-Xms{HEAP}",
        *JVM_FLAGS,
        f"-Dlog4j2.configurationFile={log4j_config}",
        f"-Dkafka.logs.dir={logs_dir}",
        # The JVM expands "dir/*" to every jar in dir, which keeps the command line short.
        "-cp",
        str(lib_dir / "*"),
    ]


def broker_command(
    java: str, lib_dir: Path, properties: Path, log4j_config: Path, logs_dir: Path
) -> list[str]:
    """The command that runs the broker. Its properties path is what the pid check looks for (process.py)."""
    return [*_jvm(java, lib_dir, log4j_config, logs_dir), MAIN_CLASS, str(properties)]


def format_command(
    java: str,
    lib_dir: Path,
    properties: Path,
    log4j_config: Path,
    logs_dir: Path,
    cluster_id: str,
    extra: list[str] | None = None,
) -> list[str]:
    """``kafka-storage.sh format``: writes meta.properties into the data dir, once, before the first start."""
    return [
        *_jvm(java, lib_dir, log4j_config, logs_dir),
        STORAGE_TOOL,
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(properties),
        *(extra or []),
    ]
