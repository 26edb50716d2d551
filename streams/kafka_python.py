"""kafka-python clients made from a ``KafkaAccess``, without what a failed start leaves behind.

When ``KafkaConsumer``, ``KafkaProducer`` or ``KafkaAdminClient`` cannot bootstrap (no broker, a refused
login, an untrusted certificate) the constructor raises, and the network client it already made keeps its
IO thread and its (TLS) sockets: there is no object whose ``close()`` would end them. Long-lived processes
(the intake retries topic creation; the agents retry their reads) would collect them. kafka-python's
documented ``kafka_client`` hook lets us keep hold of that network client and close it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from hamster.errors import BrokerError
from hamster.kafka_access import KafkaAccess, kafka_python_options

C = TypeVar("C")


def connect(client_class: type[C], kafka: KafkaAccess, **options: Any) -> C:
    """``client_class(**options)`` connected as ``kafka`` says; ``BrokerError`` when it cannot start."""
    made: list[Any] = []

    def network_client(**configs: Any) -> Any:
        client = client_class.DEFAULT_CONFIG["kafka_client"](**configs)  # type: ignore[attr-defined]
        made.append(client)
        return client

    try:
        factory: Any = client_class
        return factory(**kafka_python_options(kafka), **options, kafka_client=network_client)  # type: ignore[no-any-return]
    except Exception as exc:  # kafka-python raises NoBrokersAvailable, KafkaTimeoutError and friends
        for client in made:
            client.close()
            client._net.stop()  # what the client's close() would do; private, but there is no client
        raise BrokerError(f"cannot reach Kafka at {kafka.describe()}: {exc}") from exc
