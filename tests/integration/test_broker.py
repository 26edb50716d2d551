"""`hamster broker start|status|stop` through the real CLI, with a real Kafka on a port of its own."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from streams.topics import MAX_MESSAGE_BYTES

pytestmark = pytest.mark.integration

BOOTSTRAP = "127.0.0.1:29292"
NOT_RUNNING = 3


def hamster(home: Path, *args: str, bootstrap: str = BOOTSTRAP) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HAMSTER_KAFKA_BOOTSTRAP": bootstrap, "HAMSTER_HOME": str(home)}
    cli = Path(sys.executable).with_name("hamster")  # the venv's console script, as a user runs it
    return subprocess.run(
        [str(cli), "broker", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pid_in(output: str) -> int:
    match = re.search(r"pid (\d+)", output)
    assert match, output
    return int(match.group(1))


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def home(tmp_path: Path):
    """A fresh HAMSTER_HOME; whatever broker a test leaves in it is stopped afterwards."""
    yield tmp_path
    hamster(tmp_path, "stop")


def test_start_status_stop_round_trip(home: Path):
    """start skips a stale pid file and outlives the CLI; a 2nd start is a no-op; stop ends it (status 3)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    (home / "kafka").mkdir(parents=True)
    (home / "kafka" / "broker.pid").write_text(f"{gone.pid}\n")

    started = hamster(home, "start")
    assert started.returncode == 0, started.stderr
    assert re.fullmatch(rf"broker running on {BOOTSTRAP} \(pid \d+, data .*kafka\)\n", started.stdout)
    pid = pid_in(started.stdout)

    again = hamster(home, "start")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"broker already running on {BOOTSTRAP} (pid {pid},")

    status = hamster(home, "status")
    assert status.returncode == 0
    assert status.stdout.startswith(f"broker running on {BOOTSTRAP}")
    assert f"pid {pid}" in status.stdout and str(home / "logs" / "server.log") in status.stdout

    stopped = hamster(home, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"broker stopped (pid {pid})\n"
    assert not process_exists(pid)
    assert (home / "kafka" / "data" / ".kafka_cleanshutdown").exists()  # Kafka's clean-shutdown marker

    after = hamster(home, "status")
    assert after.returncode == NOT_RUNNING
    assert after.stdout.startswith("broker not running")


def test_stop_without_a_broker_says_so(home: Path):
    """stop with nothing running exits 0 and says the broker is not running."""
    stopped = hamster(home, "stop")
    assert stopped.returncode == 0
    assert stopped.stdout == f"broker not running on {BOOTSTRAP}\n"


def test_failed_start_reports_the_log_and_leaves_nothing_running(home: Path):
    """start on a port someone else holds exits non-zero, prints Kafka's last log lines and kills the JVM."""
    host, port = BOOTSTRAP.split(":")
    with socket.create_server((host, int(port))):
        failed = hamster(home, "start", "--timeout", "60")
    assert failed.returncode == 1
    assert "error: Kafka" in failed.stderr
    assert "Address already in use" in failed.stderr
    assert len(failed.stderr.splitlines()) > 10  # the log lines, not just the error
    assert not (home / "kafka" / "broker.pid").exists()

    status = hamster(home, "status")
    assert status.returncode == NOT_RUNNING


def test_session_broker_takes_a_full_size_github_payload(kafka_bootstrap: str):
    """The suite's broker answers metadata and accepts a 25 MiB payload plus envelope on a Hamster topic."""
    topic = "hamster-test.broker-big-message"
    payload = os.urandom(25 * 1024 * 1024 + 64 * 1024)
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)})]
        )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=MAX_MESSAGE_BYTES)
    try:
        producer.send(topic, payload).get(timeout=60)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        fetch_max_bytes=MAX_MESSAGE_BYTES,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        consumer_timeout_ms=30000,
    )
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        assert next(iter(consumer)).value == payload
    finally:
        consumer.close()


def test_start_does_not_take_another_broker_for_its_own(kafka_bootstrap: str, home: Path):
    """start on a port where another Hamster broker answers fails, rather than reporting that one as ours."""
    failed = hamster(home, "start", "--timeout", "60", bootstrap=kafka_bootstrap)
    assert failed.returncode == 1
    assert "Address already in use" in failed.stderr
    assert hamster(home, "status", bootstrap=kafka_bootstrap).returncode == NOT_RUNNING


def test_start_refuses_a_secured_protocol_it_cannot_serve(home: Path, monkeypatch: pytest.MonkeyPatch):
    """`hamster broker start` with HAMSTER_KAFKA_SECURITY_PROTOCOL=SASL_SSL says it serves PLAINTEXT only,
    instead of starting a broker its own probe could never log in to."""
    monkeypatch.setenv("HAMSTER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HAMSTER_KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("HAMSTER_KAFKA_SASL_PASSWORD", "p")
    started = hamster(home, "start")
    assert started.returncode != 0
    assert "the local broker serves PLAINTEXT" in started.stderr
    assert not (home / "kafka" / "broker.pid").exists()
