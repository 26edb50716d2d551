"""Manual runs: ``hamster trigger`` and the dashboard's form, one code path.

The commit is resolved through the GitHub API first (the ref as it is now), then a ``workflow_dispatch``
-like event naming the subscriber goes to the events topic (``hamster.subscribers.dispatch``); the match agent
starts the run like any other. Blocking (kafka-python, github3): callers on an event loop use a thread.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from hamster import ids
from hamster.errors import ConfigurationError
from hamster.github.client import client_for
from hamster.intake.envelope import EventEnvelope, encode_envelope, kafka_headers
from hamster.settings import Settings
from hamster.subscribers.dispatch import manual_event
from streams.kafka_python import connect
from streams.reader import subscribers_now
from streams.topics import MAX_MESSAGE_BYTES, events_topic


def append_event(settings: Settings, envelope: EventEnvelope) -> tuple[int, int]:
    """Write one envelope to the events topic, acknowledged: (partition, offset)."""
    producer = connect(
        KafkaProducer,
        settings.kafka,
        acks="all",
        max_request_size=MAX_MESSAGE_BYTES,
        max_block_ms=15_000,
    )
    try:
        written = producer.send(
            events_topic(settings),
            key=envelope.key.encode(),
            value=encode_envelope(envelope),
            headers=kafka_headers(envelope),
        ).get(timeout=30)
    finally:
        producer.close(timeout=10)
    return int(written.partition), int(written.offset)


def trigger_run(
    settings: Settings, subscriber: str, repo: str, ref: str, params: dict[str, Any], sender: str
) -> dict[str, Any]:
    """Start a run of ``subscriber`` on ``repo`` at ``ref``; what was sent, with the run's id."""
    if "/" not in repo:
        raise ConfigurationError(f"repository {repo!r}: give it as OWNER/NAME")
    known = subscribers_now(settings).get(subscriber)
    if known is None or not known.enabled:
        raise ConfigurationError(
            f"subscriber {subscriber}: {'disabled' if known else 'unknown'}: nothing would run"
        )
    github = client_for(settings)
    if not github.configured:
        raise ConfigurationError(
            "a manual run resolves its commit through GitHub: set HAMSTER_GITHUB_API_TOKEN"
        )
    sha = github.commit_sha(repo, ref)
    envelope = manual_event(subscriber, repo, ref, sha, params, sender)
    append_event(settings, envelope)
    return {
        "delivery_id": envelope.delivery_id,
        "run_id": ids.run_id(envelope.delivery_id, subscriber),
        "subscriber": subscriber,
        "repo": repo,
        "ref": envelope.payload["ref"],
        "sha": sha,
    }
