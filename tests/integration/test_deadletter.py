"""Poison records: set aside on the dead-letter topic with the reason and the original bytes; work goes on."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.producer.future import RecordMetadata

from streams.reader import read_at, topic_size
from tests.integration.system import System, wait_until
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

NOT_JSON = b"\xff\xfe not json at all"
NOT_AN_ENVELOPE = b'{"delivery_id": "not-a-uuid", "event": "push"}'
NOT_A_STAGE_REQUEST = b'{"run_id": "r-1"}'
TOKEN = "dlq-api-token"


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    hamster = System(kafka_bootstrap, tmp_path_factory.mktemp("dlq"), "tests.pipelines.faults")
    hamster.env["HAMSTER_API_TOKEN"] = TOKEN  # the dead-letter endpoints exist only with a token
    with hamster.running({"steady"}):
        yield hamster


def set_aside(system: System, key: bytes) -> RecordMetadata:
    """Where an undecodable record sent to the events topic under ``key`` landed (the match agent sets it
    aside as a dead letter)."""
    producer = KafkaProducer(bootstrap_servers=system.env["HAMSTER_KAFKA_BOOTSTRAP"], acks="all")
    try:
        return producer.send(f"{system.namespace}.events", key=key, value=NOT_JSON).get(30)
    finally:
        producer.close()


def dead_letters(system: System) -> list[dict]:
    listed = system.cli("dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def api(system: System, method: str, path: str, token: str | None = TOKEN) -> tuple[int, Any, Any]:
    """(status, headers, body: JSON when it is JSON, else text) of a request to the running `hamster web`."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{system.intake_port}{path}",
        method=method,
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, headers, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read()
    is_json = headers.get_content_type() == "application/json"
    return status, headers, json.loads(body) if is_json else body.decode()


def test_poison_is_set_aside_and_processing_goes_on(system: System):
    """Undecodable records on the events and a stage topic become dead letters carrying where they came from,
    why, and their exact bytes; a webhook behind them on the same partition still runs."""
    producer = KafkaProducer(bootstrap_servers=system.env["HAMSTER_KAFKA_BOOTSTRAP"], acks="all")
    try:
        poison = {
            NOT_JSON: producer.send(f"{system.namespace}.events", key=b"soak/dlq", value=NOT_JSON).get(30),
            NOT_AN_ENVELOPE: producer.send(
                f"{system.namespace}.events", key=b"soak/dlq", value=NOT_AN_ENVELOPE
            ).get(30),
            NOT_A_STAGE_REQUEST: producer.send(
                f"{system.namespace}.stage.quick", key=b"r-1", value=NOT_A_STAGE_REQUEST
            ).get(30),
        }
    finally:
        producer.close()
    status, delivery = system.post(
        "pull_request", with_repo(load("pull_request", "opened.payload.json"), "soak/dlq")
    )
    assert status == 202
    [run] = system.wait_finished(delivery, timeout=120)
    assert run["status"] == "succeeded"

    letters = wait_until(lambda: (found := dead_letters(system)) and len(found) >= 3 and found, 60)
    by_value = {base64.b64decode(letter["value_b64"]): letter for letter in letters}
    assert set(by_value) == set(poison)
    for value, sent in poison.items():
        letter = by_value[value]
        assert (letter["source_topic"], letter["partition"], letter["offset"]) == (
            sent.topic,
            sent.partition,
            sent.offset,
        )
        assert letter["reason"]
    assert by_value[NOT_JSON]["agent"] == "match"
    assert by_value[NOT_A_STAGE_REQUEST]["agent"] == "stage quick"
    assert "delivery_id" in by_value[NOT_AN_ENVELOPE]["reason"]
    assert base64.b64decode(by_value[NOT_A_STAGE_REQUEST]["key_b64"]) == b"r-1"
    human = system.cli("dlq", "list")
    assert human.returncode == 0 and f"{system.namespace}.stage.quick" in human.stdout


def test_replay_sends_the_original_bytes_back_to_their_topic(system: System):
    """`hamster dlq replay N` appends the dead letter's bytes to its source topic again, under its key."""
    sent = set_aside(system, b"soak/replay")

    def letters_of_sent() -> list[dict]:
        return [
            letter
            for letter in dead_letters(system)
            if (letter["source_topic"], letter["partition"]) == (sent.topic, sent.partition)
            and letter["offset"] >= sent.offset
        ]

    [target] = wait_until(letters_of_sent, 60, what="the poison record to be set aside")
    assert target["offset"] == sent.offset
    replayed = system.cli("dlq", "replay", str(target["number"]))
    assert replayed.returncode == 0, replayed.stderr
    # Still poison, so the match agent sets it aside once more: proof it went back through the topic.
    _, again = wait_until(lambda: (found := letters_of_sent()) and len(found) == 2 and found, 60)
    assert (again["value_b64"], again["key_b64"]) == (target["value_b64"], target["key_b64"])
    assert again["offset"] > target["offset"]


def test_replay_of_an_unknown_number_fails(system: System):
    """Replaying a dead letter that does not exist says so and exits non-zero."""
    result = system.cli("dlq", "replay", "999999")
    assert result.returncode != 0 and "no dead letter numbered 999999" in result.stderr
    assert system.cli("dlq", "replay").returncode == 2


def test_the_api_lists_and_replays_dead_letters_with_the_token(system: System):
    """Over HTTP, with the bearer token: GET /api/dead-letters lists what `dlq list --json` does, and
    POST /api/dead-letters/N/replay puts the original key and bytes back on the source topic (202, where)."""
    sent = set_aside(system, b"soak/api")

    def listed_by_api() -> list[dict]:
        status, _, letters = api(system, "GET", "/api/dead-letters")
        assert status == 200, letters
        return [
            letter
            for letter in letters
            if (letter["source_topic"], letter["partition"], letter["offset"])
            == (sent.topic, sent.partition, sent.offset)
        ]

    [target] = wait_until(listed_by_api, 60, what="the poison record in GET /api/dead-letters")
    assert base64.b64decode(target["value_b64"]) == NOT_JSON
    assert base64.b64decode(target["key_b64"]) == b"soak/api"
    assert target["agent"] == "match" and target["reason"]
    # The same fields as the command line, from the same code.
    assert api(system, "GET", "/api/dead-letters")[2] == dead_letters(system)

    status, _, landed = api(system, "POST", f"/api/dead-letters/{target['number']}/replay")
    assert status == 202, landed
    assert landed["number"] == target["number"] and landed["topic"] == sent.topic
    assert landed["partition"] == sent.partition and landed["offset"] > sent.offset
    record = read_at(system.kafka, sent.topic, landed["partition"], landed["offset"])
    assert record is not None and (record.key, record.value) == (b"soak/api", NOT_JSON)


def test_the_dead_letter_api_refuses_without_the_right_token(system: System):
    """No token or a wrong one: 401 with a Bearer challenge, for reading as for replaying, and nothing is
    sent; an unknown number is 404 and a non-number 400."""
    sent = set_aside(system, b"soak/refused")

    def its_letter() -> list[dict]:
        return [
            letter
            for letter in dead_letters(system)
            if (letter["source_topic"], letter["partition"], letter["offset"])
            == (sent.topic, sent.partition, sent.offset)
        ]

    [letter] = wait_until(its_letter, 60, what="the poison record to be set aside")
    number, source = letter["number"], letter["source_topic"]
    size = topic_size(system.kafka, source)
    for token in (None, "wrong-token"):
        for method, path in (("GET", "/api/dead-letters"), ("POST", f"/api/dead-letters/{number}/replay")):
            status, headers, _ = api(system, method, path, token=token)
            assert status == 401, (method, path, token)
            assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, text = api(system, "POST", "/api/dead-letters/999999/replay")
    assert status == 404 and "no dead letter numbered 999999" in text
    assert api(system, "POST", "/api/dead-letters/first/replay")[0] == 400
    assert topic_size(system.kafka, source) == size
