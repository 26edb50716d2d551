"""The intake against hostile requests, on the real `hamster web`: weak secrets refused at start, a gzip
bomb, a body that never finishes, a declared length over the cap, and more requests in flight than the
intake takes. Each is answered with its precise status, and the intake goes on serving afterwards."""

from __future__ import annotations

import gzip
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hamster.intake.http import MAX_BODY_BYTES
from hamster.intake.sender import github_headers
from tests.integration.system import wait_until
from tests.integration.web_process import refused_start, serving
from tests.samples import WEBHOOKS

pytestmark = pytest.mark.integration

SECRET = "limits-webhook-secret-5a0c7e19"
PUSH = (WEBHOOKS / "push" / "1.payload.json").read_bytes()
BODY_TIMEOUT_S = 2
MAX_IN_FLIGHT = 2


def env_for(kafka_bootstrap: str, home: Path, **more: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HAMSTER_")}
    return env | {
        "HAMSTER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "HAMSTER_NAMESPACE": "t" + uuid.uuid4().hex[:8],
        "HAMSTER_HOME": str(home),
        "HAMSTER_WEBHOOK_SECRET": SECRET,
        **more,
    }


@pytest.fixture(scope="module")
def intake(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a real `hamster web --intake-only` with a short body deadline."""
    home = tmp_path_factory.mktemp("limits")
    with serving(
        env_for(kafka_bootstrap, home, HAMSTER_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S)), home, "--intake-only"
    ) as port:
        yield port


@pytest.fixture(scope="module")
def capped(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a real `hamster web --intake-only` taking two webhooks at a time, with a long deadline."""
    home = tmp_path_factory.mktemp("capped")
    env = env_for(kafka_bootstrap, home, HAMSTER_INTAKE_MAX_IN_FLIGHT=str(MAX_IN_FLIGHT))
    with serving(env | {"HAMSTER_BODY_TIMEOUT_S": "600"}, home, "--intake-only") as port:
        yield port


def raw(port: int, head: bytes, body: bytes = b"") -> socket.socket:
    """A connection that has sent ``head`` and ``body``, and nothing more."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    conn.sendall(head + body)
    return conn


def answer(conn: socket.socket) -> tuple[int, bytes]:
    """(status, head) of the answer on ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    status_line = data.split(b"\r\n", 1)[0]
    return (int(status_line.split()[1]) if status_line else 0), data.split(b"\r\n\r\n", 1)[0]


def raw_status(port: int, request: bytes) -> int:
    try:
        with raw(port, request) as conn:
            return answer(conn)[0]
    except OSError:
        return 0


def webhook_head(length: int, body_for_signature: bytes = b"", **extra: str) -> bytes:
    headers = github_headers(body_for_signature, "push", SECRET.encode()) | extra
    lines = [
        "POST /webhooks/github HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Length: {length}",
    ]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("change-me", "is a placeholder"),
        ("CHANGE_ME_please", "is a placeholder"),
        ("short-secret", "is 12 characters long; use at least 20"),
        ("a" * 24, "uses only 1 different characters"),
        (f"{SECRET},changeme", "secret 2 is a placeholder"),
    ],
)
def test_a_weak_or_placeholder_secret_stops_the_start(kafka_bootstrap, tmp_path, secret, why):
    """`hamster web` with a guessable webhook secret exits 2 with one line saying which and why."""
    env = env_for(kafka_bootstrap, tmp_path) | {"HAMSTER_WEBHOOK_SECRET": secret}
    result = refused_start(env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "HAMSTER_WEBHOOK_SECRET" in line and why in line
    assert secret.split(",")[-1] not in line  # never echoed


def test_a_gzip_bomb_is_413(intake: int):
    """A 40 KiB gzip body that inflates past the 25 MiB cap is refused with 413 as it inflates."""
    bomb = gzip.compress(b"0" * (MAX_BODY_BYTES + 1024 * 1024), compresslevel=9)
    assert len(bomb) < MAX_BODY_BYTES // 100
    with raw(intake, webhook_head(len(bomb), **{"Content-Encoding": "gzip"}), bomb) as conn:
        status, head = answer(conn)
    assert status == 413, head


def test_a_gzip_body_signed_as_sent_is_stored(intake: int):
    """A well-formed gzip body, signed over its inflated bytes, is stored (202) as any other."""
    packed = gzip.compress(PUSH)
    with raw(intake, webhook_head(len(packed), PUSH, **{"Content-Encoding": "gzip"}), packed) as conn:
        status, head = answer(conn)
    assert status == 202, head


def test_a_declared_length_over_the_cap_is_413_before_any_body(intake: int):
    """Content-Length over the cap: 413 at once, no byte of the body read (none is sent)."""
    with raw(intake, webhook_head(MAX_BODY_BYTES + 1)) as conn:
        status, head = answer(conn)
    assert status == 413, head


def test_a_body_that_never_finishes_is_408(intake: int):
    """Headers, then part of the body, then nothing: 408 once the body deadline passes."""
    with raw(intake, webhook_head(len(PUSH), PUSH), PUSH[:100]) as conn:
        status, head = answer(conn)
    assert status == 408, head
    assert raw_status(intake, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 200


def test_requests_past_the_in_flight_cap_get_503_with_retry_after(capped: int):
    """Two slow webhooks fill the cap: the next one gets 503 with Retry-After (not the 401 its bad
    signature would earn), until the slow ones end; the health check answers all along."""
    unsigned = webhook_head(2, b"{}", **{"X-Hub-Signature-256": "sha256=" + "0" * 64}) + b"{}"
    slow = [raw(capped, webhook_head(len(PUSH), PUSH), PUSH[:10]) for _ in range(MAX_IN_FLIGHT)]
    try:
        # The two slow ones are in the handler once a third one is refused for the cap, not the signature.
        heads: list[bytes] = []

        def refused() -> bool:
            with raw(capped, unsigned) as conn:
                status, head = answer(conn)
            heads.append(head)
            return status == 503

        wait_until(refused, BODY_TIMEOUT_S * 5, 0.05, what="a 503 while two webhooks are in flight")
        assert b"Retry-After: " in heads[-1]
        assert raw_status(capped, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 200
    finally:
        for conn in slow:
            conn.close()
    wait_until(lambda: raw_status(capped, unsigned) == 401, 30, what="the cap freed once the slow ones ended")


def test_the_intake_only_port_serves_no_dashboard(intake: int):
    """`--intake-only`: the dashboard, its API and the sign-in pages are not there at all."""
    for path in ("/runs", "/api/runs", "/signin", "/"):
        assert raw_status(intake, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == 404, path
