"""Fuzzing the running intake: 10,000 malformed requests; no 5xx but 503, no crash, nothing stored."""

from __future__ import annotations

import http.client
import json
import uuid
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hamster.intake.envelope import MAX_DEPTH
from hamster.intake.signatures import signature_for
from streams.reader import read_topic
from tests.integration.system import SECRET, System
from tests.samples import load

# Slow on purpose (a session timeout, broker restarts, 10,000 requests): above the suite's 300 s default.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EXAMPLES = 10_000
VALID_BODY = json.dumps(load("pull_request", "opened.payload.json")).encode()
DEFECTS = (
    "no-signature",
    "wrong-signature",
    "garbage-signature",
    "truncated-body",
    "deep-json",
    "invalid-utf8",
    "not-an-object",
    "random-body",
    "wrong-content-type",
    "no-content-type",
    "no-delivery",
    "delivery-not-a-uuid",
    "no-event",
    "bad-event",
    "huge-header",
)


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    with System(kafka_bootstrap, tmp_path_factory.mktemp("fuzz"), "tests.pipelines.faults").running(
        set(), workers=0
    ) as hamster:
        yield hamster


header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80)


@st.composite
def malformed_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """A request built like GitHub's, then broken in at least one way; signed over the broken body unless
    the signature itself is among the defects, so the body defects get past the signature check."""
    defects = set(draw(st.lists(st.sampled_from(DEFECTS), min_size=1, max_size=4)))
    body = VALID_BODY
    if "truncated-body" in defects:
        body = body[: draw(st.integers(0, len(body) - 1))]
    if "deep-json" in defects:
        depth = draw(st.integers(MAX_DEPTH + 1, 20 * MAX_DEPTH))
        body = b'{"a":' * depth + b"1" + b"}" * depth
    if "invalid-utf8" in defects:
        cut = draw(st.integers(0, len(body)))
        body = (
            body[:cut]
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88"]))
            + body[cut:]
        )
    if "not-an-object" in defects:
        body = json.dumps(
            draw(st.one_of(st.lists(st.integers()), st.text(), st.integers(), st.none()))
        ).encode()
    if "random-body" in defects:
        body = draw(st.binary(max_size=2048))
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_for(body, SECRET.encode()),
        "User-Agent": "GitHub-Hookshot/fuzz",
    }
    if "no-signature" in defects:
        del headers["X-Hub-Signature-256"]
    if "wrong-signature" in defects:
        headers["X-Hub-Signature-256"] = signature_for(body, b"another secret")
    if "garbage-signature" in defects:
        headers["X-Hub-Signature-256"] = draw(header_text)
    if "wrong-content-type" in defects:
        headers["Content-Type"] = draw(
            st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "application/xml", "json"])
        )
    if "no-content-type" in defects:
        del headers["Content-Type"]
    if "no-delivery" in defects:
        del headers["X-GitHub-Delivery"]
    if "delivery-not-a-uuid" in defects:
        headers["X-GitHub-Delivery"] = draw(header_text.filter(lambda t: not _is_uuid(t)))
    if "no-event" in defects:
        del headers["X-GitHub-Event"]
    if "bad-event" in defects:
        headers["X-GitHub-Event"] = draw(st.text(st.sampled_from(" /!@#$%^&*()<>;"), min_size=1, max_size=20))
    if "huge-header" in defects:
        headers[draw(st.sampled_from(["X-Padding", "X-Hub-Signature-256", "X-GitHub-Event"]))] = "a" * draw(
            st.integers(9_000, 200_000)
        )
    return body, headers


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def send(port: int, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", "/webhooks/github", body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def test_malformed_requests_are_refused_and_store_nothing(system: System):
    """Every malformed request gets a 4xx (or a 503 by design), the intake stays up, and the events topic
    stays empty."""
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(malformed_requests())
    def refused(request: tuple[bytes, dict[str, str]]) -> None:
        status = send(system.intake_port, *request)
        statuses[status] += 1
        assert 400 <= status < 500 or status == 503, (status, request[1])

    refused()
    assert sum(statuses.values()) >= EXAMPLES
    assert system.procs["web"].poll() is None, system.log_tail("web")
    assert system._get(f"http://127.0.0.1:{system.intake_port}/healthz") == 200
    events = list(read_topic(system.kafka, f"{system.namespace}.events"))
    assert events == []
    # The defects reached past the door: signatures, parsing and headers were each refused.
    assert {400, 401, 415} <= set(statuses)
