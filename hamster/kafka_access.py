"""How every Kafka client of Hamster connects: the broker list, TLS and SASL, as one value and its options.

Hamster talks to Kafka through three libraries: Faust (the workers' app), aiokafka (the intake's
producer, the run view, the log reader) and kafka-python (the CLI's readers and producers, topic
creation). ``KafkaAccess`` is what they share, made once from the settings (``Settings.kafka``); the
functions below turn it into each library's keyword arguments, so a client can only differ from the
others by what it does, never by how it connects. Nothing else in Hamster names a ``security_protocol``.

Kafka's own words for the settings: https://kafka.apache.org/documentation/#security_overview
(``security.protocol``, ``sasl.mechanism``, ``ssl.truststore``; SCRAM: #security_sasl_scram).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Required, TypedDict

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True)
class KafkaAccess:
    """Where the brokers are and how to reach them. The password never shows in ``repr``."""

    bootstrap: str
    protocol: Protocol = "PLAINTEXT"
    mechanism: Mechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None  # None: the system's trusted CAs
    certfile: Path | None = None  # a client certificate (PEM), for brokers that ask for one
    keyfile: Path | None = None
    check_hostname: bool = True

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def servers(self) -> list[str]:
        return [server.strip() for server in self.bootstrap.split(",")]

    def describe(self) -> str:
        """``host:port`` and how, for messages: ``127.0.0.1:9093 (SASL_SSL, SCRAM-SHA-512 as hamster)``."""
        if self.protocol == "PLAINTEXT":
            return self.bootstrap
        how = f", {self.mechanism} as {self.username}" if self.sasl else ""
        return f"{self.bootstrap} ({self.protocol}{how})"


def problems(access: KafkaAccess) -> list[str]:
    """What makes ``access`` unusable, as settings messages (empty when it is complete)."""
    found = []
    if access.sasl and not (access.username and access.password):
        found.append(
            f"HAMSTER_KAFKA_SECURITY_PROTOCOL={access.protocol} needs HAMSTER_KAFKA_SASL_USERNAME and "
            "HAMSTER_KAFKA_SASL_PASSWORD (or HAMSTER_KAFKA_SASL_PASSWORD_FILE)"
        )
    if (access.certfile is None) != (access.keyfile is None):
        found.append("HAMSTER_KAFKA_SSL_CERTFILE and HAMSTER_KAFKA_SSL_KEYFILE go together")
    if not access.tls and (access.cafile or access.certfile):
        found.append(
            f"HAMSTER_KAFKA_SSL_* are set but HAMSTER_KAFKA_SECURITY_PROTOCOL={access.protocol} uses no TLS "
            "(SSL or SASL_SSL)"
        )
    return found


@functools.lru_cache(maxsize=8)
def ssl_context(access: KafkaAccess) -> ssl.SSLContext:
    """The TLS context every client uses: the CA file (or the system's), hostname checks, a client cert.

    Made once per process and access (it reads the files): all three libraries take a ready context.
    """
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(access.cafile) if access.cafile else None
    )
    context.check_hostname = access.check_hostname
    if not access.check_hostname:
        # Still verify the chain: an unchecked name is a deliberate choice, an unchecked CA never is.
        context.verify_mode = ssl.CERT_REQUIRED
    if access.certfile is not None:
        context.load_cert_chain(str(access.certfile), str(access.keyfile) if access.keyfile else None)
    return context


class AiokafkaOptions(TypedDict, total=False):
    """Keyword arguments of aiokafka's clients (the same names as kafka-python's)."""

    bootstrap_servers: Required[list[str]]
    security_protocol: Required[Protocol]
    ssl_context: ssl.SSLContext
    sasl_mechanism: Mechanism
    sasl_plain_username: str | None
    sasl_plain_password: str | None


class KafkaPythonOptions(AiokafkaOptions, total=False):
    """Keyword arguments of kafka-python's clients: aiokafka's, and whether TLS checks the host name."""

    ssl_check_hostname: bool


class FaustOptions(TypedDict, total=False):
    """Keyword arguments of ``faust.App`` (its settings ``broker`` and ``broker_credentials``)."""

    broker: Required[str]
    broker_credentials: CredentialsT


def _add_sasl(options: AiokafkaOptions, access: KafkaAccess) -> None:
    if access.sasl:
        options["sasl_mechanism"] = access.mechanism
        options["sasl_plain_username"] = access.username
        options["sasl_plain_password"] = access.password


def kafka_python_options(access: KafkaAccess) -> KafkaPythonOptions:
    """Keyword arguments for kafka-python's ``KafkaConsumer``, ``KafkaProducer`` and ``KafkaAdminClient``."""
    options: KafkaPythonOptions = {"bootstrap_servers": access.servers, "security_protocol": access.protocol}
    if access.tls:
        options["ssl_context"] = ssl_context(access)
        options["ssl_check_hostname"] = access.check_hostname
    _add_sasl(options, access)
    return options


def aiokafka_options(access: KafkaAccess) -> AiokafkaOptions:
    """Keyword arguments for aiokafka's ``AIOKafkaProducer`` and ``AIOKafkaConsumer``."""
    options: AiokafkaOptions = {"bootstrap_servers": access.servers, "security_protocol": access.protocol}
    if access.tls:
        options["ssl_context"] = ssl_context(access)
    _add_sasl(options, access)
    return options


def faust_options(access: KafkaAccess) -> FaustOptions:
    """Keyword arguments for ``faust.App``: the broker URL, and its credentials when it needs any.

    Faust passes ``broker_credentials`` on to every aiokafka client it makes (consumer, producer, admin):
    ``faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth``.
    """
    import faust

    options: FaustOptions = {"broker": ";".join(f"kafka://{server}" for server in access.servers)}
    context = ssl_context(access) if access.tls else None
    if access.sasl:
        options["broker_credentials"] = faust.SASLCredentials(
            username=access.username,
            password=access.password,
            mechanism=access.mechanism,
            ssl_context=context,  # SASL_SSL with a context, SASL_PLAINTEXT without
        )
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options
