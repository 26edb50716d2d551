"""How Kafka clients connect: the settings, and the options each client library gets from them."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from hamster.broker.config import SecureListener, scram_arguments, server_config
from hamster.errors import ConfigurationError
from hamster.kafka_access import (
    KafkaAccess,
    aiokafka_options,
    faust_options,
    kafka_python_options,
    problems,
)
from hamster.settings import load_settings
from tests.tls import make_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


def test_plaintext_is_the_default_and_adds_nothing():
    """Without security settings every library gets the broker list and PLAINTEXT, nothing else."""
    access = load_settings(kafka_bootstrap="127.0.0.1:9092,127.0.0.1:9093").kafka
    expected = {"bootstrap_servers": ["127.0.0.1:9092", "127.0.0.1:9093"], "security_protocol": "PLAINTEXT"}
    assert kafka_python_options(access) == expected
    assert aiokafka_options(access) == expected
    assert faust_options(access) == {"broker": "kafka://127.0.0.1:9092;kafka://127.0.0.1:9093"}


def test_sasl_ssl_gives_every_library_the_same_login_and_tls(certs):
    """SASL_SSL: mechanism, user and password, and one TLS context trusting the CA, for all three."""
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="ci",
        kafka_sasl_password="pw",
        kafka_ssl_cafile=certs.ca,
    )
    access = settings.kafka
    for options in (kafka_python_options(access), aiokafka_options(access)):
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-256"
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("ci", "pw")
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    credentials = faust_options(access)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-256"
    assert (credentials.username, credentials.password) == ("ci", "pw")
    assert "pw" not in repr(access) and "pw" not in repr(settings)


def test_ssl_without_sasl_and_a_client_certificate(certs):
    """SSL alone: TLS (with a client certificate when given), no SASL options; Faust gets SSL credentials."""
    access = KafkaAccess(
        "127.0.0.1:9093", "SSL", cafile=certs.ca, certfile=certs.cert, keyfile=certs.key, check_hostname=False
    )
    options = aiokafka_options(access)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert options["ssl_context"].check_hostname is False
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED  # the chain is still checked
    assert kafka_python_options(access)["ssl_check_hostname"] is False
    assert isinstance(faust_options(access)["broker_credentials"], faust.SSLCredentials)


def test_sasl_plaintext_has_no_tls():
    """SASL_PLAINTEXT: a login, no TLS context; Faust's credentials say SASL_PLAINTEXT."""
    access = KafkaAccess("h:1", "SASL_PLAINTEXT", "PLAIN", "u", "p")
    assert "ssl_context" not in aiokafka_options(access)
    credentials = faust_options(access)["broker_credentials"]
    assert credentials.protocol.value == "SASL_PLAINTEXT" and credentials.mechanism.value == "PLAIN"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs HAMSTER_KAFKA_SASL_USERNAME"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
            "HAMSTER_KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "c.pem"}, "go together"),
        ({"kafka_ssl_cafile": "ca.pem"}, "uses no TLS"),
        ({"kafka_security_protocol": "TLS"}, "HAMSTER_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "HAMSTER_KAFKA_SASL_MECHANISM"),
    ],
)
def test_incomplete_or_unknown_security_settings_are_refused(overrides, message):
    """A login without its password, half a client certificate, TLS files without TLS: one clear line."""
    with pytest.raises(ConfigurationError, match=message):
        load_settings(**overrides)


def test_the_password_can_come_from_a_file(tmp_path: Path):
    """HAMSTER_KAFKA_SASL_PASSWORD_FILE: its content without its newline; not both; unreadable fails."""
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    settings = load_settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password_file=secret
    )
    assert settings.kafka.password == "from-a-file"
    with pytest.raises(ConfigurationError, match="set one, not both"):
        load_settings(kafka_sasl_password="x", kafka_sasl_password_file=secret)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_settings(kafka_sasl_password_file=tmp_path / "missing")


def test_problems_of_a_complete_access_are_none():
    """A complete SASL_SSL access has no problems."""
    assert problems(KafkaAccess("h:1", "SASL_SSL", "SCRAM-SHA-512", "u", "p")) == []


def test_the_secure_listener_is_sasl_ssl_only_with_scram_and_no_clear_passwords(tmp_path: Path):
    """server.properties for SASL_SSL: one client listener, SCRAM only (PLAIN on request), PEM key store;
    the users' passwords reach the broker only as `format --add-scram` arguments."""
    listener = SecureListener(tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem", {"ci": "pw-ci"})
    config = server_config(
        "127.0.0.1", 9092, tmp_path / "data", secure=listener, keystore=tmp_path / "ks.pem"
    )
    assert config["listeners"] == "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert config["advertised.listeners"] == "SASL_SSL://127.0.0.1:9092"
    assert config["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,SCRAM-SHA-512"
    assert config["ssl.keystore.location"] == str(tmp_path / "ks.pem")
    assert "pw-ci" not in "".join(config.values())
    arguments = scram_arguments(listener)
    assert "SCRAM-SHA-512=[name=ci,password=pw-ci]" in arguments
    assert "SCRAM-SHA-256=[name=ci,password=pw-ci]" in arguments
    with_plain = server_config(
        "127.0.0.1", 9092, tmp_path, secure=SecureListener(*listener.__dict__.values())
    )
    assert "PLAIN" not in with_plain["sasl.enabled.mechanisms"].split(",")
    plain = SecureListener(listener.certfile, listener.keyfile, listener.cafile, {"ci": "pw-ci"}, plain=True)
    assert (
        'user_ci="pw-ci"'
        in server_config("h", 1, tmp_path, secure=plain)["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    )


def test_a_jaas_breaking_password_is_refused(tmp_path: Path):
    """A password with a quote would end the JAAS value: refused rather than escaped."""
    listener = SecureListener(tmp_path, tmp_path, tmp_path, {"ci": 'a"b'}, plain=True)
    with pytest.raises(ConfigurationError, match="quotes"):
        server_config("127.0.0.1", 9092, tmp_path, secure=listener)


def test_a_scram_password_that_breaks_the_format_syntax_is_refused(tmp_path: Path):
    """`--add-scram` reads [name=...,password=...]: a comma or bracket in a password is refused."""
    for password in ("a,b", "a]b", "a=b"):
        listener = SecureListener(tmp_path, tmp_path, tmp_path, {"ci": password})
        with pytest.raises(ConfigurationError, match="may not hold"):
            scram_arguments(listener)


def test_every_node_of_a_sasl_ssl_cluster_serves_sasl_ssl_and_logs_in_to_the_others(tmp_path: Path):
    """A three-node cluster with the secure listener: each node's client and inter-broker listener is
    SASL_SSL, its controller stays plaintext on loopback, and all share the broker's own SCRAM login."""
    listener = SecureListener(tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem", {"ci": "pw-ci"})
    ports = [29600, 29602, 29604]
    configs = [
        server_config("127.0.0.1", port, tmp_path / f"n{n}", node_id=n, cluster_ports=ports, secure=listener)
        for n, port in enumerate(ports, start=1)
    ]
    for port, config in zip(ports, configs, strict=True):
        assert config["listeners"] == f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}"
        assert config["inter.broker.listener.name"] == "SASL_SSL"
        assert config["controller.quorum.voters"] == "1@127.0.0.1:29601,2@127.0.0.1:29603,3@127.0.0.1:29605"
        assert config["default.replication.factor"] == "3"
    logins = {config["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] for config in configs}
    assert len(logins) == 1 and listener.broker_password in logins.pop()
