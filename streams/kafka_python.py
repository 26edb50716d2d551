"""kafka-python clients made from a ``KafkaAccess``, without what a failed start leaves behind.

When ``KafkaConsumer``, ``KafkaProducer`` or ``KafkaAdminClient`` cannot bootstrap (no broker, a refused
login, an untrusted certificate) the constructor raises, and the network client it already made keeps its
IO thread and its (TLS) sockets: there is no object whose ``close()`` would end them. Long-lived processes
(the intake retries topic creation; the agents retry their reads) would collect them. kafka-python's
documented ``kafka_client`` hook lets us keep hold of that network client and close it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hamster.errors import BrokerError
from hamster.kafka_access import KafkaAccess, kafka_python_options

if TYPE_CHECKING:  # kafka-python is imported by the callers that use it, not by importing this module
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

C = TypeVar("C", "KafkaConsumer", "KafkaProducer", "KafkaAdminClient")


class _Selector(Protocol):
    def stop(self) -> None: ...


class _NetworkClient(Protocol):
    """What is used here of kafka-python's ``KafkaClient`` (its stubs leave that class out)."""

    _net: _Selector

    def close(self) -> None: ...


def connect(client_class: type[C], kafka: KafkaAccess, **options: Any) -> C:
    """``client_class(**options)`` connected as ``kafka`` says; ``BrokerError`` when it cannot start."""
    made: list[_NetworkClient] = []

    def network_client(**configs: object) -> _NetworkClient:
        client: _NetworkClient = client_class.DEFAULT_CONFIG["kafka_client"](**configs)
        made.append(client)
        return client

    try:
        return client_class(**kafka_python_options(kafka), **options, kafka_client=network_client)
    except Exception as exc:  # kafka-python raises NoBrokersAvailable, KafkaTimeoutError and friends
        for client in made:
            client.close()
            client._net.stop()  # what the client's close() would do; private, but there is no client
        raise BrokerError(f"cannot reach Kafka at {kafka.describe()}: {exc}") from exc
