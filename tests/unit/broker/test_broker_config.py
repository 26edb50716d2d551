"""The local broker's pure parts: ports, cluster ids, server.properties, commands, the jar cache's place."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import pytest

from hamster.broker import KAFKA_VERSION, jars
from hamster.broker.config import (
    SOCKET_REQUEST_MAX_BYTES,
    broker_command,
    controller_port,
    format_command,
    listen_host,
    new_cluster_id,
    node_ports,
    render_properties,
    server_config,
)
from hamster.broker.log_excerpt import TAIL_LINES, excerpt
from hamster.broker.probe import NodeMetadata, parse_metadata
from hamster.errors import ConfigurationError

GITHUB_MAX_PAYLOAD = 25 * 1024 * 1024


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {key: value.replace("\\\\", "\\") for key, value in pairs}


def test_controller_listens_one_port_above_the_clients():
    """The controller port is the bootstrap port + 1."""
    assert controller_port(9092) == 9093
    assert controller_port(29292) == 29293


def test_top_port_leaves_no_room_for_the_controller():
    """Port 65535 is refused: there is no port above it for the controller."""
    with pytest.raises(ConfigurationError, match="65535"):
        controller_port(65535)


@pytest.mark.parametrize(
    ("host", "bound"),
    [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("[::1]", "[::1]")],
)
def test_loopback_hosts_are_bound_as_addresses(host, bound):
    """Loopback hosts are accepted; localhost is pinned to 127.0.0.1."""
    assert listen_host(host) == bound


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "kafka.example.com", "::"])
def test_non_loopback_hosts_are_refused(host):
    """The local broker never listens beyond loopback."""
    with pytest.raises(ConfigurationError, match="loopback"):
        listen_host(host)


def test_cluster_id_looks_like_kafkas():
    """A cluster id is 22 URL-safe base64 characters encoding a version-4 UUID."""
    cluster_id = new_cluster_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
    raw = base64.urlsafe_b64decode(cluster_id + "==")
    assert raw[6] >> 4 == 4


def test_cluster_id_never_starts_with_a_dash():
    """Random bytes that would encode to a leading '-' are drawn again, as Kafka does."""
    draws = iter([b"\xf8" + bytes(15), bytes(16)])  # 0xf8 -> "-" in URL-safe base64
    cluster_id = new_cluster_id(lambda _n: next(draws))
    assert not cluster_id.startswith("-")
    assert cluster_id == base64.urlsafe_b64encode(bytes(6) + b"\x40\x00\x80" + bytes(7)).decode().rstrip("=")


def test_server_config_is_single_node_kraft_on_loopback():
    """One node is broker and controller, on the given port and the next; it advertises the first."""
    config = server_config("127.0.0.1", 29092, Path("/data/kafka"))
    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert config["log.dirs"] == "/data/kafka"
    assert config["offsets.topic.replication.factor"] == "1"


def test_server_config_never_creates_topics_by_accident():
    """Topic auto-creation is off, so a typo cannot make a topic with the wrong partition count."""
    assert server_config("127.0.0.1", 9092, Path("/d"))["auto.create.topics.enable"] == "false"


def test_server_config_fits_a_full_github_payload():
    """message.max.bytes holds a 25 MiB payload plus envelope, and a request can carry such a batch."""
    config = server_config("127.0.0.1", 9092, Path("/d"))
    message_max = int(config["message.max.bytes"])
    assert message_max > GITHUB_MAX_PAYLOAD
    assert int(config["socket.request.max.bytes"]) == SOCKET_REQUEST_MAX_BYTES >= 2 * message_max


def test_rendered_properties_round_trip():
    """Rendering writes every key once and escapes backslashes in values."""
    config = {**server_config("127.0.0.1", 9092, Path("/d")), "log.dirs": r"C:\kafka\data"}
    text = render_properties(config)
    assert text.startswith("#")
    assert parse_properties(text) == config


def test_broker_command_runs_kafka_with_a_512_mib_heap():
    """The JVM gets a fixed 512 MiB heap, the cached jars, the logging config, and the properties last."""
    command = broker_command(
        "java", Path("/lib"), Path("/k/server.properties"), Path("/k/log4j2.properties"), Path("/logs")
    )
    assert command[0] == "java"
    assert {"-Xmx512m", "-Xms512m", "-XX:+UseG1GC"} <= set(command)
    assert command[command.index("-cp") + 1] == "/lib/*"
    assert "-Dlog4j2.configurationFile=/k/log4j2.properties" in command
    assert "-Dkafka.logs.dir=/logs" in command
    assert command[-2:] == ["kafka.Kafka", "/k/server.properties"]


def test_format_command_formats_with_the_cluster_id():
    """Storage is formatted by Kafka's StorageTool with our cluster id and config."""
    command = format_command(
        "java", Path("/lib"), Path("/k/server.properties"), Path("/k/log4j2.properties"), Path("/logs"), "abc"
    )
    tool = command.index("kafka.tools.StorageTool")
    assert command[tool:] == [
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        "abc",
        "--config",
        "/k/server.properties",
    ]


def test_jar_cache_honours_xdg_cache_home():
    """Jars are cached under $XDG_CACHE_HOME when it is an absolute path, else under ~/.cache."""
    assert jars.cache_dir({"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"}) == Path(
        f"/xdg/hamster/kafka-{KAFKA_VERSION}/lib"
    )
    for env in ({"HOME": "/home/u"}, {"XDG_CACHE_HOME": "relative", "HOME": "/home/u"}):
        assert jars.cache_dir(env) == Path(f"/home/u/.cache/hamster/kafka-{KAFKA_VERSION}/lib")


def test_jar_cache_is_complete_only_for_the_same_pom(tmp_path):
    """A cache counts only if its manifest names this pom and every jar it listed is still there."""
    pom = jars.package_file("pom.xml")
    assert not jars.is_complete(tmp_path, pom)
    (tmp_path / "a.jar").write_bytes(b"")
    manifest = tmp_path / jars.MANIFEST
    manifest.write_text(f"{jars.pom_fingerprint(pom)}\na.jar\n")
    assert jars.is_complete(tmp_path, pom)
    assert not jars.is_complete(tmp_path, pom + "<!-- changed -->")
    (tmp_path / "a.jar").unlink()
    assert not jars.is_complete(tmp_path, pom)


def test_pom_fetches_the_kafka_version_hamster_runs():
    """The pom in the package asks Maven for KAFKA_VERSION, with the SLF4J 1.x log4j binding."""
    pom = jars.package_file("pom.xml")
    assert re.search(
        rf"<artifactId>kafka_2\.13</artifactId>\s*<version>{re.escape(KAFKA_VERSION)}</version>", pom
    )
    assert "<artifactId>log4j-slf4j-impl</artifactId>" in pom
    assert "log4j-slf4j2-impl" not in pom.split("-->")[-1]


def record(level: str, message: str) -> str:
    return f"[2026-11-27 22:04:09,501] {level} {message} (kafka.Kafka$)"


def test_log_excerpt_shows_the_first_error_and_the_last_lines():
    """A failed start shows Kafka's first ERROR with its causes (no stack frames), then the last lines."""
    lines = [
        record("INFO", "starting"),
        record("ERROR", "Unable to start acceptor for PLAINTEXT"),
        "org.apache.kafka.common.KafkaException: Socket server failed to bind to 127.0.0.1:29292",
        "\tat kafka.network.Acceptor.openServerSocket(SocketServer.scala:634)",
        "Caused by: java.net.BindException: Address already in use",
        "\t... 6 more",
        *(record("INFO", f"shutting down part {n}") for n in range(100)),
    ]
    shown = excerpt(lines)
    assert shown[:4] == [lines[1], lines[2], lines[4], "…"]
    assert shown[4:] == lines[-TAIL_LINES:]


def test_log_excerpt_is_the_tail_when_it_holds_the_error():
    """When the error is among the last lines, or there is none, the excerpt is just the last lines."""
    quiet = [record("INFO", f"line {n}") for n in range(50)]
    assert excerpt(quiet) == quiet[-TAIL_LINES:]
    late = [*quiet, record("ERROR", "boom")]
    assert excerpt(late) == late[-TAIL_LINES:]


def test_cluster_nodes_take_every_other_port():
    """Three nodes on one bootstrap port: port, port + 2, port + 4 (each controller on the port above)."""
    assert node_ports(29600, 3) == [29600, 29602, 29604]
    assert node_ports(9092, 1) == [9092]


def test_cluster_nodes_take_the_bootstraps_ports_when_it_lists_one_per_node():
    """A bootstrap listing three servers names the three nodes' ports; one listing another count does not."""
    assert node_ports(9092, 3, [9092, 9192, 9292]) == [9092, 9192, 9292]
    assert node_ports(9092, 3, [9092, 9192]) == [9092, 9094, 9096]


def test_cluster_ports_must_leave_room_for_the_controllers():
    """Listed ports one apart would put a node on another's controller port: refused."""
    with pytest.raises(ConfigurationError, match="controller"):
        node_ports(9092, 2, [9092, 9093])
    with pytest.raises(ConfigurationError, match="65535"):
        node_ports(65531, 3)
    with pytest.raises(ConfigurationError, match="at least one node"):
        node_ports(9092, 0)


def test_server_config_for_each_node_of_a_three_node_cluster():
    """Each node has its id, its own listeners, and the same three-voter quorum; Kafka's own topics and
    the cluster's topic defaults have three replicas, two in sync."""
    ports = [29600, 29602, 29604]
    configs = [
        server_config("127.0.0.1", port, Path(f"/d/node-{n}"), node_id=n, cluster_ports=ports)
        for n, port in enumerate(ports, start=1)
    ]
    voters = "1@127.0.0.1:29601,2@127.0.0.1:29603,3@127.0.0.1:29605"
    for n, (port, config) in enumerate(zip(ports, configs, strict=True), start=1):
        assert config["node.id"] == str(n)
        assert config["process.roles"] == "broker,controller"
        assert config["controller.quorum.voters"] == voters
        assert config["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}"
        assert config["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert config["log.dirs"] == f"/d/node-{n}"
        assert config["offsets.topic.replication.factor"] == "3"
        assert config["transaction.state.log.replication.factor"] == "3"
        assert config["transaction.state.log.min.isr"] == "2"
        assert config["default.replication.factor"] == "3"
        assert config["min.insync.replicas"] == "2"
        assert config["unclean.leader.election.enable"] == "false"
        # Stopped together, the last nodes would wait for a quorum already gone.
        assert config["controlled.shutdown.enable"] == "false"


def test_single_node_config_is_what_it_always_was():
    """A node alone gets no cluster keys: one voter, one replica, Kafka's shutdown as before."""
    alone = server_config("127.0.0.1", 9092, Path("/d"))
    assert server_config("127.0.0.1", 9092, Path("/d"), node_id=1, cluster_ports=[9092]) == alone
    assert alone["node.id"] == "1"
    assert alone["transaction.state.log.min.isr"] == "1"
    assert not {"default.replication.factor", "min.insync.replicas", "controlled.shutdown.enable"} & set(
        alone
    )


def test_server_config_refuses_a_node_not_in_its_cluster():
    """A node id or port that the cluster's port list does not hold is a bug, refused."""
    with pytest.raises(ConfigurationError):
        server_config("127.0.0.1", 29602, Path("/d"), node_id=1, cluster_ports=[29600, 29602])
    with pytest.raises(ConfigurationError):
        server_config("127.0.0.1", 29600, Path("/d"), node_id=3, cluster_ports=[29600, 29602])


def metadata_v4(brokers: list[tuple[int, str, int, str | None]], cluster_id: str | None) -> bytes:
    """A Metadata v4 response body as Kafka encodes it (https://kafka.apache.org/protocol#The_Messages_Metadata)."""

    def string(value: str | None) -> bytes:
        return struct.pack(">h", -1) if value is None else struct.pack(">h", len(value)) + value.encode()

    body = struct.pack(">ii", 0, len(brokers))
    for node_id, host, port, rack in brokers:
        body += struct.pack(">i", node_id) + string(host) + struct.pack(">i", port) + string(rack)
    return body + string(cluster_id) + struct.pack(">ii", 1, 0)


def test_probe_reads_the_cluster_id_and_the_brokers_a_node_knows():
    """The probe's Metadata answer gives the cluster id and how many brokers the node lists."""
    body = metadata_v4(
        [(1, "127.0.0.1", 29600, None), (2, "127.0.0.1", 29602, "rack-b")], "uYKFKpCYTOueFaOk0t8dSQ"
    )
    assert parse_metadata(body) == NodeMetadata("uYKFKpCYTOueFaOk0t8dSQ", 2)
    assert parse_metadata(metadata_v4([], None)) == NodeMetadata(None, 0)


def test_probe_refuses_a_truncated_metadata_answer():
    """An answer cut short is an error (the probe then says the node does not answer), not a wrong id."""
    body = metadata_v4([(1, "127.0.0.1", 29600, None)], "uYKFKpCYTOueFaOk0t8dSQ")
    for cut in (6, 20, len(body) - 20):
        with pytest.raises(struct.error):
            parse_metadata(body[:cut])
