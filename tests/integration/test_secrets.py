"""Secrets never leak: all a test run wrote (logs, topics, run outputs, DB, CLI output) is searched."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request

import pytest

from tests.integration import secret_scan
from tests.integration.system import SECRET, System, free_port
from tests.samples import load, with_repo

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "whsec-" + secrets.token_hex(16)
GITHUB_TOKEN = "ghp_" + secrets.token_hex(18)
API_TOKEN = "api-" + secrets.token_hex(16)
KEY_BODY = secrets.token_hex(24)
KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
SECRETS = {
    "webhook secret": WEBHOOK_SECRET,
    "GitHub token": GITHUB_TOKEN,
    "API token": API_TOKEN,
    "key": KEY_BODY,
}


def leaks(blob: bytes) -> list[str]:
    return secret_scan.leaks(blob, SECRETS)


@pytest.fixture(scope="module")
def system(kafka_bootstrap, tmp_path_factory):
    home = tmp_path_factory.mktemp("secrets")
    key = home / "github.key"
    key.write_text(KEY)
    hamster = System(kafka_bootstrap, home, "tests.pipelines.faults")
    hamster.env.update(
        {
            # A rotated pair: the harness signs with the first; the second is secret material all the same.
            "HAMSTER_WEBHOOK_SECRET": f"{SECRET},{WEBHOOK_SECRET}",
            "HAMSTER_GITHUB_API_TOKEN": GITHUB_TOKEN,
            # Nothing listens there: every GitHub call fails, so error paths run and log too.
            "HAMSTER_GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",
            "HAMSTER_API_TOKEN": API_TOKEN,
            "HAMSTER_GITHUB_KEY": str(key),
            "HAMSTER_LOG_LEVEL": "DEBUG",
        }
    )
    with hamster.running({"steady", "flaky", "refuses"}):
        yield hamster


def test_the_scan_finds_a_planted_secret():
    """The scan itself works: each secret, plain or base64, is found in a blob that holds it."""
    for value in SECRETS.values():
        for form in secret_scan.forms(value):
            assert leaks(b"before " + form + b" after")
    assert leaks(b"nothing to see") == []


def test_nothing_written_holds_a_secret(system: System):
    """After successful, failing and retried runs, refused webhooks and CLI calls, no log line, Kafka record,
    run output, database row or command output holds any secret."""
    pr = load("pull_request", "opened.payload.json")
    deliveries = [
        system.post("pull_request", with_repo(pr, repo))[1]
        for repo in ("soak/s", "faults/flaky", "faults/refuses")
    ]
    for delivery in deliveries:
        system.wait_finished(delivery, timeout=120)
    # Refused: signed with the API token instead of the secret, and carrying the token as a bearer header.
    refused = urllib.request.Request(
        system.url,
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "not-a-uuid " + API_TOKEN,
            "X-Hub-Signature-256": "sha256=" + API_TOKEN,
            "Authorization": f"Bearer {API_TOKEN}",
        },
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(refused, timeout=30)
    outputs = [
        system.cli(*args) for args in (["runs", "list", "--json"], ["dlq", "list"], ["subscribers", "list"])
    ]
    system.stop()  # flush and close every log before reading them

    written = secret_scan.files_under(system.home, but="github.key")
    records = secret_scan.topic_records(system)
    written |= records
    for i, result in enumerate(outputs):
        written[f"cli output {i}"] = (result.stdout + result.stderr).encode()

    # The scan covered real material: logs, the database, the run log and the events.
    assert any(name.endswith("web.log") and blob for name, blob in written.items())
    assert any(name.endswith("hamster.db") for name in written)
    assert len(records) > 10 and any(".run-events[" in name for name in written)
    found = {name: leaks(blob) for name, blob in written.items() if leaks(blob)}
    assert found == {}
