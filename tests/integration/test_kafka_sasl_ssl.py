"""Hamster over SASL_SSL only: a broker of this module's own whose one client listener is SASL_SSL (TLS with a
CA made here by openssl, SCRAM users made when its storage is formatted). The whole flow runs on it — the
intake's producer, the workers' Faust app, the run view, the CLI's kafka-python readers and producers — and
clients without credentials, with a wrong password or without the CA are refused.

The broker's port is ``$HAMSTER_TEST_KAFKA_PORT`` + 4 (its controller takes the next one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from kafka import KafkaProducer

from hamster.broker import LocalBroker
from hamster.broker.config import SecureListener
from hamster.broker.probe import metadata_cluster_id
from hamster.kafka_access import KafkaAccess, kafka_python_options
from hamster.settings import load_settings
from tests.integration.system import REPO_ROOT, System, kafka_env, wait_until
from tests.samples import load, with_repo
from tests.tls import make_ca, make_certificates

pytestmark = pytest.mark.integration

SUBSCRIBERS = {"replayable", "fixable"}
USER, PASSWORD = "hamster-ci", "s3cret-" + "x" * 24


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KafkaAccess, LocalBroker]]:
    """A broker with only a SASL_SSL listener for clients, and how Hamster logs in to it."""
    port = int(os.environ.get("HAMSTER_TEST_KAFKA_PORT", "29092")) + 4
    home = tmp_path_factory.mktemp("kafka-sasl-ssl")
    certs = make_certificates(home / "certs")
    settings = load_settings(
        kafka_bootstrap=f"127.0.0.1:{port}",
        home=home,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=certs.ca,
    )
    broker = LocalBroker(settings, secure=SecureListener(certs.cert, certs.key, certs.ca, {USER: PASSWORD}))
    try:
        broker.start(timeout_s=120.0)
        yield settings.kafka, broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def access(secure_broker: tuple[KafkaAccess, LocalBroker]) -> KafkaAccess:
    return secure_broker[0]


@pytest.fixture(scope="module")
def system(access: KafkaAccess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    home = tmp_path_factory.mktemp("sasl-ssl-system")
    # The password from a file, as a deployment mounts it, rather than in the environment.
    password_file = home / "kafka-password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    checkpoints = {"HAMSTER_AUDIT_KEY": "k" * 64, "HAMSTER_AUDIT_CHECKPOINT_INTERVAL_S": "1"}
    hamster = System(access, home, "tests.pipelines.replay_catalog", env=checkpoints)
    del hamster.env["HAMSTER_KAFKA_SASL_PASSWORD"]
    hamster.env["HAMSTER_KAFKA_SASL_PASSWORD_FILE"] = str(password_file)
    with hamster.running(SUBSCRIBERS):
        yield hamster


@pytest.fixture(scope="module")
def finished(system: System) -> list[dict]:
    """Two runs from webhooks: one succeeds, one fails at its second stage."""
    good = with_repo(load("pull_request", "opened.payload.json"), "replay/sasl")
    bad = with_repo(load("pull_request", "opened.payload.json"), "fix/sasl")
    deliveries = []
    for payload in (good, bad):
        status, delivery = system.post("pull_request", payload)
        assert status == 202
        deliveries.append(delivery)
    return [system.wait_finished(d, timeout=120)[0] for d in deliveries]


def test_the_broker_serves_clients_over_sasl_ssl_only(secure_broker):
    """The broker's only client listener is SASL_SSL; the controller stays on loopback plaintext."""
    access, broker = secure_broker
    properties = (broker.data_dir / "server.properties").read_text()
    port = access.servers[0].rsplit(":", 1)[1]
    assert f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{int(port) + 1}\n" in properties
    assert "PLAINTEXT://127.0.0.1" not in properties.replace("CONTROLLER:PLAINTEXT", "")
    assert PASSWORD not in properties  # SCRAM credentials live in the metadata log, salted
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        assert metadata_cluster_id(replace(access, mechanism=mechanism), 10.0) is not None


def test_a_webhook_runs_through_intake_match_stages_and_projection(system: System, finished):
    """Webhook → intake → match → stages on a worker → run finished in the projection, all over SASL_SSL."""
    ok, failed = finished
    assert ok["status"] == "succeeded" and ok["subscriber"] == "replayable"
    assert failed["status"] == "failed" and failed["subscriber"] == "fixable"
    assert {s["name"]: s["status"] for s in system.runs_for(ok["delivery_id"])[0]["stages"]} == {
        "checkout": "succeeded",
        "check": "succeeded",
    }


def test_the_cli_reads_and_writes_over_sasl_ssl(system: System, finished):
    """`runs show --audit`, `audit verify`, `replay events --dry-run`, `subscribers disable`, `dlq list`."""
    ok, _ = finished
    shown = system.cli("runs", "show", ok["run_id"], "--audit", "--json")
    assert shown.returncode == 0, shown.stderr
    assert next(r["type"] for r in json.loads(shown.stdout)) == "RunRequested"

    def verified() -> dict | None:
        answer = system.cli("audit", "verify", "--json")
        assert answer.returncode == 0, answer.stdout + answer.stderr
        body = json.loads(answer.stdout)
        parts = body["checkpoints"]["partitions"]
        return body if parts and all(p["uncovered"] == 0 for p in parts) else None

    # The workers' checkpoints are written over SASL_SSL too, and the whole log matches them.
    body = wait_until(verified, 60, 1.0, what="audit checkpoints covering the run log")
    assert body["records"] >= 10 and body["checkpoints"]["findings"] == []

    dry = system.cli("replay", "events", "--since", "1h", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout) | {"new": [], "gone": []} == {
        "events": 2,
        "would_start": 2,
        "did_start": 2,
        "unchanged": 2,
        "new": [],
        "gone": [],
    }

    assert system.cli("subscribers", "disable", "fixable").returncode == 0
    history = system.cli("subscribers", "history", "fixable")
    assert history.returncode == 0 and "disable" in history.stdout.lower(), history.stdout
    assert system.cli("subscribers", "enable", "fixable").returncode == 0

    # A record no agent can decode, written by a client of our own over SASL_SSL: the match agent sets it
    # aside, and `dlq list` reads it back.
    producer = KafkaProducer(**kafka_python_options(system.kafka), acks="all")
    try:
        producer.send(f"{system.namespace}.events", key=b"x/y", value=b"not json").get(30)
    finally:
        producer.close()

    def listed() -> list:
        answer = system.cli("dlq", "list", "--json")
        assert answer.returncode == 0, answer.stderr
        return list(json.loads(answer.stdout))

    [letter] = wait_until(listed, 60, 1.0, what="the dead letter")
    assert letter["source_topic"] == f"{system.namespace}.events"


# A client in a child process: kafka-python (3.0.12) leaves the socket of a refused connection to the garbage
# collector (a failed TLS handshake is not closed in ``KafkaNetManager._build_transport``), whose warning
# would land in whichever test runs then.
CLIENT = """
from hamster.broker.probe import metadata_cluster_id
from hamster.errors import BrokerError
from hamster.settings import load_settings
from streams.reader import topic_size

kafka = load_settings().kafka
try:
    print("read", topic_size(kafka, "__cluster_metadata", timeout_s=5))
except BrokerError as exc:
    print("refused:", exc)
print("cluster:", metadata_cluster_id(kafka, 5.0))
"""


def try_client(access: KafkaAccess) -> str:
    """What a client connecting as ``access`` gets: its output (``read``/``refused:``, ``cluster:``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAMSTER_")} | kafka_env(access)
    done = subprocess.run(
        [sys.executable, "-c", CLIENT], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_right_login_reads(access: KafkaAccess):
    """The control for the refusals below: the same client with the right login reads and sees the cluster."""
    out = try_client(access)
    assert "read 0" in out and "cluster: None" not in out, out


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"protocol": "PLAINTEXT", "cafile": None}, id="plaintext"),
        pytest.param({"protocol": "SSL"}, id="tls-without-login"),
        pytest.param({"password": "wrong-password"}, id="wrong-password"),
        pytest.param({"username": "nobody"}, id="unknown-user"),
        pytest.param({"mechanism": "SCRAM-SHA-256", "password": "wrong-password"}, id="wrong-password-256"),
        # This broker does not enable PLAIN (it would keep the passwords in clear in server.properties).
        pytest.param({"mechanism": "PLAIN"}, id="plain-not-offered"),
    ],
)
def test_a_client_without_the_right_login_is_refused(access: KafkaAccess, change):
    """Without SASL, with a wrong password, an unknown user or a mechanism the broker does not offer, a
    client learns nothing from the broker: not a topic, not the cluster's id."""
    out = try_client(replace(access, **change))
    assert "refused: cannot reach Kafka at 127.0.0.1" in out and "cluster: None" in out, out


def test_the_broker_says_why_it_refused_a_wrong_password(secure_broker):
    """The broker logs a failed SCRAM authentication for a wrong password (not just a timeout)."""
    access, broker = secure_broker
    log = Path(broker.log_file)
    before = log.read_text(errors="replace").count("invalid credentials")
    assert "refused:" in try_client(replace(access, password="wrong-password"))
    assert log.read_text(errors="replace").count("invalid credentials") > before


def test_a_client_that_does_not_trust_the_brokers_ca_is_refused(access: KafkaAccess, tmp_path):
    """TLS is checked: a client trusting another CA, or only the system's, does not talk to the broker."""
    other_ca, _key = make_ca(tmp_path, "another-ca")
    for cafile in (other_ca, None):
        out = try_client(replace(access, cafile=cafile))
        assert "refused: cannot reach Kafka" in out and "cluster: None" in out, out


def test_a_worker_with_a_wrong_password_never_becomes_ready(access: KafkaAccess, tmp_path):
    """The intake with a wrong password answers /readyz 503 and writes no webhook: it cannot log in."""
    hamster = System(replace(access, password="wrong-password"), tmp_path, "tests.pipelines.replay_catalog")
    try:
        hamster._spawn("web", "web", "--port", str(hamster.intake_port))
        ready = f"http://127.0.0.1:{hamster.intake_port}/readyz"
        wait_until(lambda: hamster._get(ready) == 503, 60, what="the intake to answer /readyz")
        status, _ = hamster.post("pull_request", load("pull_request", "opened.payload.json"))
        assert status == 503
        assert hamster._get(ready) == 503
    finally:
        hamster.stop()


def test_the_kafka_password_is_in_no_log_or_file_hamster_wrote(system: System, finished):
    """The intake's and workers' logs, the database and every other file under HAMSTER_HOME hold the
    password nowhere (it is read from its file and handed to the clients only)."""
    leaks = [
        str(path)
        for path in system.home.rglob("*")
        if path.is_file() and path.name != "kafka-password" and PASSWORD.encode() in path.read_bytes()
    ]
    assert leaks == []
    assert any((system.home / f"{name}.log").stat().st_size for name in ("web", "worker-1"))
