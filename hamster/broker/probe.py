"""Is our Kafka node answering? Ready means a metadata request succeeds, not merely an open port.

Two round trips on a plain socket, to the node itself: an ApiVersions request (cheap, and it says "no"
without side effects while the node is still starting), then a Metadata request for no topics, whose answer
carries the cluster id, so that another broker already on the port is not taken for ours, and the brokers
the node knows. Asking the node itself matters for a cluster: a client library would send its metadata
request to any broker it learned of, and fail when that one is the node just killed. No client library
also means no threads or sockets left behind when the node does not answer.

That raw Metadata request carries no login, so it serves plaintext listeners only: what ``hamster broker``
runs by default. A node that wants SASL (the local broker started with a ``SecureListener``, or a user's
broker) is asked for its cluster id and brokers by a kafka-python admin client made from ``KafkaAccess``
(``streams.kafka_python``), bootstrapped from that node alone; its ApiVersions probe still goes over a raw
socket (TLS-wrapped when the protocol uses TLS), since a SASL listener answers ApiVersions before any login
(KIP-35, KIP-43).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from dataclasses import dataclass

from hamster.errors import BrokerError
from hamster.kafka_access import KafkaAccess, ssl_context

# https://kafka.apache.org/protocol#The_Messages_ApiVersions: api key 18. Version 0 has an empty body and
# a plain request header (api key, version, correlation id, client id); a broker answers it (at worst with
# UNSUPPORTED_VERSION), so any reply carrying our correlation id means Kafka is speaking.
_API_VERSIONS = 18
# https://kafka.apache.org/protocol#The_Messages_Metadata: api key 3. Version 4 is the oldest Kafka 4
# still serves (KIP-896) and the newest before the flexible encoding (v9), so every field is plain.
_METADATA = 3
_METADATA_VERSION = 4
_CORRELATION_ID = 0x4A5E
_CLIENT_ID = b"hamster-broker-probe"


@dataclass(frozen=True)
class NodeMetadata:
    """What a node says of its cluster."""

    cluster_id: str | None
    brokers: int  # the brokers it knows as registered and unfenced


def node_answers(
    kafka: KafkaAccess, host: str, port: int, cluster_id: str, timeout_s: float, brokers: int = 1
) -> bool:
    """True if the node at ``host:port`` (reached as ``kafka``, whose bootstrap names that node alone)
    answers, is of ``cluster_id`` and knows ``brokers`` brokers: raw requests on a plaintext listener, an
    authenticated client on any other."""
    if kafka.protocol == "PLAINTEXT":
        return answers(host, port, cluster_id, timeout_s, brokers)
    if not answers_api_versions(host, port, timeout_s, kafka):
        return False
    found = client_metadata(kafka, timeout_s)
    return found is not None and found.cluster_id == cluster_id and found.brokers >= brokers


def answers(host: str, port: int, cluster_id: str, timeout_s: float, brokers: int = 1) -> bool:
    """True if the plaintext node at ``host:port`` answers, is of ``cluster_id`` and knows ``brokers``
    brokers."""
    if not answers_api_versions(host, port, timeout_s):
        return False
    found = node_metadata(host, port, timeout_s)
    return found is not None and found.cluster_id == cluster_id and found.brokers >= brokers


def answers_api_versions(host: str, port: int, timeout_s: float, kafka: KafkaAccess | None = None) -> bool:
    """True if ``host:port`` answers ApiVersions; over TLS when ``kafka`` uses it (no credentials sent)."""
    tls = ssl_context(kafka) if kafka is not None and kafka.tls else None
    reply = _round_trip(host, port, _API_VERSIONS, 0, b"", timeout_s, tls)
    return reply is not None


def any_server_answers(kafka: KafkaAccess, timeout_s: float) -> bool:
    """True if any of ``kafka``'s bootstrap servers answers ApiVersions (one node down is not the cluster)."""
    for server in kafka.servers:
        host, port = server.rsplit(":", 1)
        if answers_api_versions(host, int(port), timeout_s, kafka):
            return True
    return False


def node_metadata(host: str, port: int, timeout_s: float) -> NodeMetadata | None:
    """The node's Metadata answer for no topics, or None if it does not give one."""
    # Body v4: topics (an empty array: none, where a null array would mean all), allow_auto_topic_creation.
    body = struct.pack(">ib", 0, 0)
    reply = _round_trip(host, port, _METADATA, _METADATA_VERSION, body, timeout_s)
    if reply is None:
        return None
    try:
        return parse_metadata(reply)
    except (struct.error, UnicodeDecodeError):
        return None


def parse_metadata(body: bytes) -> NodeMetadata:
    """Metadata response v4: throttle_time_ms, brokers [node_id, host, port, rack], cluster_id, …"""
    offset = 4  # throttle_time_ms
    (count,) = struct.unpack_from(">i", body, offset)
    offset += 4
    for _ in range(count):
        offset += 4  # node_id
        offset = _skip_string(body, offset)  # host
        offset += 4  # port
        offset = _skip_string(body, offset)  # rack (nullable)
    (length,) = struct.unpack_from(">h", body, offset)
    offset += 2
    cluster_id = None if length < 0 else body[offset : offset + length].decode()
    if length > 0 and offset + length > len(body):
        raise struct.error("truncated cluster id")
    return NodeMetadata(cluster_id, count)


def _skip_string(body: bytes, offset: int) -> int:
    length: int = struct.unpack_from(">h", body, offset)[0]
    return offset + 2 + max(length, 0)


def _round_trip(
    host: str,
    port: int,
    api_key: int,
    version: int,
    body: bytes,
    timeout_s: float,
    tls: ssl.SSLContext | None = None,
) -> bytes | None:
    """Send one request (header v1) and return the response body after its correlation id, or None."""
    header = struct.pack(">hhih", api_key, version, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID
    request = header + body
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((host.strip("[]"), port), timeout=timeout_s))
            if tls is not None:  # the TLS socket takes the plain one over: it is the one to close
                sock = stack.enter_context(tls.wrap_socket(sock, server_hostname=host.strip("[]")))
            sock.sendall(struct.pack(">i", len(request)) + request)
            head = _receive(sock, 8)  # size, then the response header's correlation id
            if head is None:
                return None
            size, correlation = struct.unpack(">ii", head)
            if correlation != _CORRELATION_ID or size < 4:
                return None
            return _receive(sock, size - 4)
    except OSError:  # ssl.SSLError included
        return None


def _receive(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def client_metadata(kafka: KafkaAccess, timeout_s: float) -> NodeMetadata | None:
    """The cluster id and unfenced brokers as an authenticated client of ``kafka`` sees them, once it lists
    its topics; None if it does not."""
    # Imported here: kafka-python takes a while to import and only a secured probe needs it.
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    from streams.kafka_python import connect

    timeout_ms = int(timeout_s * 1000)
    try:
        admin = connect(
            KafkaAdminClient,
            kafka,
            client_id="hamster-broker-probe",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
        )
    except BrokerError:
        return None
    try:
        admin.list_topics()
        cluster = admin.describe_cluster()
    except KafkaError:
        return None
    finally:
        admin.close()
    brokers = [broker for broker in cluster.get("brokers", []) if not broker.get("is_fenced")]
    return NodeMetadata(str(cluster["cluster_id"]), len(brokers))


def metadata_cluster_id(kafka: KafkaAccess, timeout_s: float) -> str | None:
    """The cluster id of the brokers at ``kafka`` as an authenticated client sees it; None if not given."""
    found = client_metadata(kafka, timeout_s)
    return found.cluster_id if found is not None else None
