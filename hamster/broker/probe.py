"""Is our Kafka broker answering? Ready means a metadata request succeeds, not merely an open port.

Two steps. First a raw ApiVersions round trip on a plain socket: cheap, no threads, and it says "no" without
side effects while the broker is still starting. Only then kafka-python's admin client lists the topics (the
real metadata request) and asks for the cluster id, so that another broker already on the port is not taken
for ours. kafka-python leaks its IO thread and sockets when its constructor fails to bootstrap, so it is kept
away from brokers that do not answer at all.
"""

from __future__ import annotations

import contextlib
import socket
import struct

from hamster.errors import BrokerError
from hamster.kafka_access import KafkaAccess, ssl_context

# https://kafka.apache.org/protocol#The_Messages_ApiVersions: api key 18. Version 0 has an empty body and
# a plain request header (api key, version, correlation id, client id); a broker answers it (at worst with
# UNSUPPORTED_VERSION), so any reply carrying our correlation id means Kafka is speaking.
_API_VERSIONS = 18
_CORRELATION_ID = 0x4A5E
_CLIENT_ID = b"hamster-broker-probe"


def answers(kafka: KafkaAccess, cluster_id: str, timeout_s: float) -> bool:
    """True if the broker at ``kafka`` answers ApiVersions, lists its topics and is of ``cluster_id``."""
    if not answers_api_versions(kafka, timeout_s):
        return False
    return metadata_cluster_id(kafka, timeout_s) == cluster_id


def answers_api_versions(kafka: KafkaAccess, timeout_s: float) -> bool:
    """True if the first bootstrap server answers ApiVersions (over TLS when ``kafka`` uses it).

    A SASL listener answers ApiVersions before authentication (KIP-35, KIP-43), so no credentials are sent.
    """
    host, port = kafka.servers[0].rsplit(":", 1)
    header = struct.pack(">hhih", _API_VERSIONS, 0, _CORRELATION_ID, len(_CLIENT_ID)) + _CLIENT_ID
    request = struct.pack(">i", len(header)) + header
    try:
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((host.strip("[]"), int(port)), timeout_s))
            if kafka.tls:  # the TLS socket takes the plain one over: it is the one to close
                sock = stack.enter_context(
                    ssl_context(kafka).wrap_socket(sock, server_hostname=host.strip("[]"))
                )
            sock.sendall(request)
            reply = _receive(sock, 8)  # size, then the response header's correlation id
    except OSError:  # ssl.SSLError included
        return False
    return reply is not None and struct.unpack(">ii", reply)[1] == _CORRELATION_ID


def _receive(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def metadata_cluster_id(kafka: KafkaAccess, timeout_s: float) -> str | None:
    """The cluster id of the broker at ``kafka`` once it lists its topics; None if it does not."""
    # Imported here: kafka-python takes a while to import and only the probe needs it.
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
        return str(admin.describe_cluster()["cluster_id"])
    except KafkaError:
        return None
    finally:
        admin.close()
