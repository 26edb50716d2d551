"""The webhook intake over real HTTP against the real broker: stored before answered, refused if not.

Most tests post to one `hamster web` subprocess serving a namespace of this module's own. The outage test runs
the intake in-process against a broker of its own on 127.0.0.1:29192, which it stops and restarts.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from hamster.broker import LocalBroker
from hamster.intake.envelope import MAX_DEPTH, decode_envelope
from hamster.intake.http import MAX_BODY_BYTES, create_intake_app
from hamster.intake.sender import github_headers
from hamster.settings import Settings, load_settings
from streams.admin import ensure_topics
from streams.producer import EventProducer
from streams.topics import events_topic, topic_specs
from tests.integration.system import free_port
from tests.integration.web_process import DIRECT, HAMSTER, http_status, refused_start, serving
from tests.samples import WEBHOOKS

pytestmark = pytest.mark.integration

SAMPLES = sorted(WEBHOOKS.glob("*/*.json"))
PUSH = (WEBHOOKS / "push" / "1.payload.json").read_bytes()
OUTAGE_BOOTSTRAP = "127.0.0.1:29192"
MIB = 1024 * 1024
S1 = "first-webhook-secret-0c4e91"  # two secrets: rotation (any one verifies)
S2 = "second-webhook-secret-b27f3d"


@dataclass(frozen=True)
class Intake:
    base: str
    settings: Settings
    env: dict[str, str]

    @property
    def webhook(self) -> str:
        return f"{self.base}/webhooks/github"

    @property
    def topic(self) -> str:
        return events_topic(self.settings)


# -- helpers ---------------------------------------------------------------------------------------


async def post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if isinstance(body, bytes):
        body = io.BytesIO(body)  # aiohttp warns that big raw bytes would be sent blocking the loop
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        text = await response.text()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {"text": text}
        return response.status, answer


def consumer(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, client_id="hamster-intake-tests"
    )


def read_record(bootstrap: str, topic: str, partition: int, offset: int) -> Any:
    """The record at ``topic[partition]@offset``, read with kafka-python (another client than the writer)."""
    reader = consumer(bootstrap)
    try:
        tp = TopicPartition(topic, partition)
        reader.assign([tp])
        reader.seek(tp, offset)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for record in reader.poll(timeout_ms=1000).get(tp, []):
                if record.offset == offset:
                    return record
        pytest.fail(f"no record at {topic}[{partition}]@{offset}")
    finally:
        reader.close()


def records_in(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (the sum of its partitions' end offsets)."""
    reader = consumer(bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
        assert partitions, f"topic {topic} does not exist"
        return sum(reader.end_offsets(partitions).values())
    finally:
        reader.close()


def expected_key(payload: dict[str, Any]) -> str:
    repository = (payload.get("repository") or {}).get("full_name")
    organization = (payload.get("organization") or {}).get("login")
    return str(repository or organization or "-")


def sample_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# -- the intake under test: the real `hamster web` -------------------------------------------------


@pytest.fixture(scope="module")
def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    home = tmp_path_factory.mktemp("intake-home")
    namespace = "t" + uuid.uuid4().hex[:8]
    settings = load_settings(
        kafka_bootstrap=kafka_bootstrap, namespace=namespace, webhook_secret=f"{S1},{S2}", home=home
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith("HAMSTER_")}
    env |= {
        "HAMSTER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HAMSTER_NAMESPACE": namespace,
        "HAMSTER_WEBHOOK_SECRET": f"{S1},{S2}",
        "HAMSTER_HOME": str(home),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    # The topics are not created here: `hamster web` creates them itself, and /readyz says when.
    with serving(env, home) as port:
        yield Intake(f"http://127.0.0.1:{port}", settings, env)


# -- accepted --------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
async def test_every_sample_is_stored_before_it_is_acknowledged(intake: Intake, sample: Path) -> None:
    """Each recorded payload, signed, is answered 202 (ping: 200) with where it is stored, and reads back
    from the topic with the repository key (raw bytes), GitHub's headers and the same payload."""
    body = sample.read_bytes()
    event = sample.parent.name
    headers = github_headers(body, event, S1.encode())
    delivery = headers["X-GitHub-Delivery"]

    status, answer = await post(intake.webhook, body, headers)

    assert status == (200 if event == "ping" else 202), answer
    assert answer["delivery_id"] == delivery
    record = read_record(intake.settings.kafka_bootstrap, intake.topic, answer["partition"], answer["offset"])
    payload = json.loads(body)
    key = expected_key(payload).encode()
    assert record.key == key
    # Raw key bytes hashed as Java's client does, so every Kafka client agrees on the partition.
    assert answer["partition"] == (murmur2(key) & 0x7FFFFFFF) % intake.settings.partitions
    assert dict(record.headers) == {"X-GitHub-Event": event.encode(), "X-GitHub-Delivery": delivery.encode()}
    envelope = decode_envelope(record.value)
    assert (envelope.delivery_id, envelope.event, envelope.key) == (delivery, event, key.decode())
    assert envelope.payload == payload
    assert envelope.replay_of is None


async def test_a_rotated_secret_is_still_accepted(intake: Intake) -> None:
    """A body signed with the second configured secret is accepted too (secret rotation)."""
    status, answer = await post(intake.webhook, PUSH, github_headers(PUSH, "push", S2.encode()))
    assert status == 202, answer


async def test_a_body_near_githubs_cap_is_stored_whole(intake: Intake) -> None:
    """A 24 MiB payload (GitHub allows 25 MB) goes through the producer, broker and topic limits intact."""
    payload = json.loads(PUSH)
    payload["big"] = "x" * (24 * MIB)
    body = json.dumps(payload).encode()
    headers = github_headers(body, "push", S1.encode())

    status, answer = await post(intake.webhook, body, headers)

    assert status == 202, answer
    record = read_record(intake.settings.kafka_bootstrap, intake.topic, answer["partition"], answer["offset"])
    assert decode_envelope(record.value).payload == payload


# -- refused, and nothing written ------------------------------------------------------------------


def _signed(body: bytes, /, **changes: str | None) -> tuple[bytes, dict[str, str]]:
    """A correctly signed push with ``changes`` applied to its headers (None removes a header)."""
    headers = github_headers(body, "push", S1.encode())
    for name, value in changes.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return body, headers


def _deep(levels: int) -> bytes:
    return ('{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)).encode()


REJECTIONS = [
    pytest.param(
        _signed(PUSH, **{"X-Hub-Signature-256": None, "X-Hub-Signature": None}), 401, id="no-signature"
    ),
    pytest.param((PUSH, github_headers(PUSH, "push", b"not-configured")), 401, id="unknown-secret"),
    pytest.param(
        _signed(
            PUSH, **{"X-Hub-Signature-256": github_headers(b"{}", "push", S1.encode())["X-Hub-Signature-256"]}
        ),
        401,
        id="signature-of-another-body",
    ),
    pytest.param(_signed(PUSH, **{"X-Hub-Signature-256": None}), 401, id="sha1-signature-only"),
    pytest.param(_signed(PUSH, **{"X-GitHub-Event": None}), 400, id="no-event-header"),
    pytest.param(_signed(PUSH, **{"X-GitHub-Delivery": None}), 400, id="no-delivery-header"),
    pytest.param(_signed(PUSH, **{"X-GitHub-Delivery": "delivery-1"}), 400, id="delivery-not-a-uuid"),
    pytest.param(
        _signed(b"payload=%7B%7D", **{"Content-Type": "application/x-www-form-urlencoded"}),
        415,
        id="form-encoded",
    ),
    pytest.param(_signed(PUSH[:-10]), 400, id="truncated-json"),
    pytest.param(_signed(b"[1, 2]"), 400, id="json-array"),
    pytest.param(_signed(b'{"a": "\xff"}'), 400, id="not-utf8"),
    pytest.param(_signed(_deep(MAX_DEPTH + 1)), 400, id="nested-too-deep"),
]


@pytest.mark.parametrize(("request_", "status"), REJECTIONS)
async def test_refused_requests_get_their_status_and_write_nothing(
    intake: Intake, request_: tuple[bytes, dict[str, str]], status: int
) -> None:
    """Each refusal answers its status with a JSON error, and the topic gains no record."""
    body, headers = request_
    before = records_in(intake.settings.kafka_bootstrap, intake.topic)

    got, answer = await post(intake.webhook, body, headers)

    assert (got, set(answer)) == (status, {"error"})
    assert records_in(intake.settings.kafka_bootstrap, intake.topic) == before


def _over_the_cap() -> bytes:
    return b'{"zen": "' + b"x" * (MAX_BODY_BYTES - 10) + b'"}'  # one byte over 25 MiB


async def test_a_body_over_25_mib_is_413(intake: Intake) -> None:
    """A correctly signed body one byte over 25 MiB, with its length declared, is refused 413."""
    body, headers = _signed(_over_the_cap())
    assert len(body) == MAX_BODY_BYTES + 1
    before = records_in(intake.settings.kafka_bootstrap, intake.topic)

    status, answer = await post(intake.webhook, body, headers)

    assert status == 413, answer
    assert records_in(intake.settings.kafka_bootstrap, intake.topic) == before


async def test_a_chunked_body_over_25_mib_is_413_while_reading(intake: Intake) -> None:
    """Without a declared length the cap is enforced while reading: a chunked body over 25 MiB is 413."""
    body, headers = _signed(_over_the_cap())
    before = records_in(intake.settings.kafka_bootstrap, intake.topic)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), MIB):
            yield body[start : start + MIB]

    status, _ = await post(intake.webhook, chunks(), headers)

    assert status == 413
    assert records_in(intake.settings.kafka_bootstrap, intake.topic) == before


async def test_get_on_the_webhook_is_405(intake: Intake) -> None:
    """Only POST is routed to the webhook: GET is 405."""
    async with aiohttp.ClientSession() as session, session.get(intake.webhook) as response:
        assert response.status == 405


def test_health_and_readiness(intake: Intake) -> None:
    """/healthz and /readyz answer 200 while the broker is up and the topics exist."""
    assert http_status(f"{intake.base}/healthz") == 200
    assert http_status(f"{intake.base}/readyz") == 200


# -- hamster web without a broker or a secret -----------------------------------------------------------


def test_hamster_web_refuses_to_start_without_a_secret(intake: Intake) -> None:
    """Without HAMSTER_WEBHOOK_SECRET `hamster web` exits 2 with one line saying so."""
    env = {name: value for name, value in intake.env.items() if name != "HAMSTER_WEBHOOK_SECRET"}
    result = refused_start(env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "HAMSTER_WEBHOOK_SECRET" in result.stderr


def test_hamster_web_serves_503_while_no_broker_answers(intake: Intake, tmp_path: Path) -> None:
    """`hamster web` pointed at a port where no broker listens still starts: healthz 200, readyz and webhooks
    503; and it stops cleanly on SIGTERM."""
    env = intake.env | {"HAMSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "HAMSTER_HOME": str(tmp_path)}
    port = free_port()
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(HAMSTER), "web", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if http_status(f"{base}/healthz") == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.25)
        assert http_status(f"{base}/readyz") == 503
        headers = github_headers(PUSH, "push", S1.encode())
        request = urllib.request.Request(f"{base}/webhooks/github", data=PUSH, headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            DIRECT.open(request, timeout=30)
        assert refused.value.code == 503
        assert json.loads(refused.value.read()) == {
            "error": "the event store is unavailable; redeliver later"
        }
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=15) == 0, log.read_text(errors="replace")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


# -- hamster send ----------------------------------------------------------------------------------


def run_send(intake: Intake, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HAMSTER), "send", *args],
        env=intake.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_hamster_send_posts_a_signed_payload(intake: Intake) -> None:
    """`hamster send` signs with HAMSTER_WEBHOOK_SECRET, prints 202 and the answer, and exits 0."""
    sample = WEBHOOKS / "pull_request" / "opened.payload.json"
    delivery = str(uuid.uuid4())

    result = run_send(
        intake, str(sample), "--event", "pull_request", "--url", intake.webhook, "--delivery", delivery
    )

    assert result.returncode == 0, result.stderr
    status_line, answer_line = result.stdout.strip().splitlines()
    assert status_line.startswith("202")
    answer = json.loads(answer_line)
    assert answer["delivery_id"] == delivery
    record = read_record(intake.settings.kafka_bootstrap, intake.topic, answer["partition"], answer["offset"])
    assert record.value and decode_envelope(record.value).payload == json.loads(sample.read_bytes())


def test_hamster_send_with_a_wrong_secret_exits_1(intake: Intake) -> None:
    """A refused delivery is printed (401) and `hamster send` exits 1."""
    result = run_send(
        intake,
        str(WEBHOOKS / "ping" / "payload.json"),
        "--event",
        "ping",
        "--url",
        intake.webhook,
        "--secret",
        "wrong",
    )
    assert result.returncode == 1
    assert result.stdout.startswith("401")


def test_hamster_send_to_nothing_says_so(intake: Intake) -> None:
    """With no server at the URL, `hamster send` exits 1 with a one-line reason."""
    url = f"http://127.0.0.1:{free_port()}/webhooks/github"
    result = run_send(intake, str(WEBHOOKS / "ping" / "payload.json"), "--event", "ping", "--url", url)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot reach {url}")


# -- broker outage ---------------------------------------------------------------------------------


async def test_broker_outage_answers_503_and_recovers_after_restart(tmp_path: Path) -> None:
    """Broker down at start or stopped while running: healthz 200, readyz and webhooks 503 (never 2xx);
    once the broker is back the next webhook is stored and answered 202."""
    settings = load_settings(
        kafka_bootstrap=OUTAGE_BOOTSTRAP,
        namespace="t" + uuid.uuid4().hex[:8],
        webhook_secret=S1,
        home=tmp_path,
    )
    broker = LocalBroker(settings)
    producer = EventProducer(settings.kafka, events_topic(settings), timeout_s=3.0)
    runner = web.AppRunner(create_intake_app(settings, producer))
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        base = f"http://{host}:{port}"

        async def deliver() -> tuple[int, dict[str, Any]]:
            return await post(f"{base}/webhooks/github", PUSH, github_headers(PUSH, "push", S1.encode()))

        async def get(path: str) -> int:
            async with aiohttp.ClientSession() as session, session.get(base + path) as response:
                return response.status

        # The intake started with no broker at all.
        assert (await get("/healthz"), await get("/readyz")) == (200, 503)
        status, answer = await deliver()
        assert (status, set(answer)) == (503, {"error"})

        await asyncio.to_thread(broker.start)
        await asyncio.to_thread(ensure_topics, settings.kafka, topic_specs(settings))
        assert (await deliver())[0] == 202
        assert await get("/readyz") == 200

        await asyncio.to_thread(broker.stop)
        assert (await get("/healthz"), await get("/readyz")) == (200, 503)
        status, answer = await deliver()
        assert (status, set(answer)) == (503, {"error"})

        await asyncio.to_thread(broker.start)
        status, answer = await deliver()
        assert status == 202, answer
        assert await get("/readyz") == 200
        record = await asyncio.to_thread(
            read_record,
            settings.kafka_bootstrap,
            events_topic(settings),
            answer["partition"],
            answer["offset"],
        )
        assert decode_envelope(record.value).delivery_id == answer["delivery_id"]
        # Exactly the two acknowledged deliveries were stored: nothing answered 503 landed after all.
        assert await asyncio.to_thread(records_in, settings.kafka_bootstrap, events_topic(settings)) == 2
    finally:
        await runner.cleanup()
        await asyncio.to_thread(broker.stop)
