"""Where the dashboard gets what the projection does not hold, and how it changes things.

The subscribers table and changes to it, reruns, and the dead letters: all go through Kafka with
kafka-python, which blocks, so each call runs in a thread. Tests hand the dashboard other callables with
the same shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from kafka import KafkaProducer

from hamster.runs.events import DecideStage
from hamster.settings import Settings
from hamster.subscribers.changes import SubscriberDisabled, SubscriberEnabled, SubscriberState
from streams.admin import publish_subscriber_change
from streams.dead_letter_codec import listed
from streams.dead_letter_store import read_dead_letters, replay_dead_letters
from streams.kafka_python import connect
from streams.reader import subscribers_now
from streams.rerun import rerun_run
from streams.topics import run_control_topic, subscribers_topic

ListSubscribers = Callable[[], Awaitable[dict[str, SubscriberState]]]
SetEnabled = Callable[[str, bool], Awaitable[None]]
Replay = Callable[[str], Awaitable[dict[str, Any]]]
ListDeadLetters = Callable[[], Awaitable[list[dict[str, Any]]]]
ReplayDeadLetter = Callable[[int], Awaitable[dict[str, Any]]]
Trigger = Callable[[str, str, str, dict[str, Any]], Awaitable[dict[str, Any]]]
# Approve = (run id, stage, approved or denied, who) → the record written
Decide = Callable[[str, str, bool, str], Awaitable[dict[str, Any]]]


def kafka_subscribers(settings: Settings) -> ListSubscribers:
    async def list_subscribers() -> dict[str, SubscriberState]:
        return await asyncio.to_thread(subscribers_now, settings)

    return list_subscribers


def kafka_set_enabled(settings: Settings) -> SetEnabled:
    """Publish ``SubscriberEnabled``/``SubscriberDisabled``, as ``hamster subscribers enable/disable`` do."""

    def publish(name: str, enabled: bool) -> None:
        change = SubscriberEnabled(name=name) if enabled else SubscriberDisabled(name=name)
        publish_subscriber_change(
            settings.kafka, subscribers_topic(settings), name, change.model_dump_json().encode()
        )

    async def set_enabled(name: str, enabled: bool) -> None:
        await asyncio.to_thread(publish, name, enabled)

    return set_enabled


def kafka_replay(settings: Settings) -> Replay:
    """Rerun a run from its first stage, exactly as ``hamster replay run RUN_ID`` does (no GitHub reports)."""

    def publish(run_id: str) -> dict[str, Any]:
        # The same code path as the command line, so the dashboard's button and the CLI cannot drift apart.
        new = rerun_run(settings, run_id, None, False)
        return {"run_id": new.run_id, "original_run_id": new.original_run_id, "attempt": new.attempt}

    async def replay(run_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(publish, run_id)

    return replay


def kafka_trigger(settings: Settings) -> Trigger:
    """Start a manual run, exactly as ``hamster trigger`` does (the same code path)."""

    async def trigger(subscriber: str, repo: str, ref: str, params: dict[str, Any]) -> dict[str, Any]:
        # Not at the top: it brings github3 (requests, cryptography), and `hamster --help` loads this module.
        from streams.dispatch import trigger_run

        return await asyncio.to_thread(trigger_run, settings, subscriber, repo, ref, params, "dashboard")

    return trigger


def kafka_decide(settings: Settings) -> Decide:
    """Approve or deny an approval stage: a ``DecideStage`` on the run-control topic, as a comment does."""

    def publish(run_id: str, stage: str, approve: bool, by: str) -> dict[str, Any]:
        command = DecideStage(run_id=run_id, stage=stage, approve=approve, by=by, via="dashboard")
        producer = connect(KafkaProducer, settings.kafka, acks="all", max_block_ms=15_000)
        try:
            producer.send(
                run_control_topic(settings), key=run_id.encode(), value=command.model_dump_json().encode()
            ).get(timeout=30)
        finally:
            producer.close(timeout=10)
        return command.model_dump()

    async def decide(run_id: str, stage: str, approve: bool, by: str) -> dict[str, Any]:
        return await asyncio.to_thread(publish, run_id, stage, approve, by)

    return decide


def kafka_dead_letters(settings: Settings) -> ListDeadLetters:
    """The dead letters, oldest first, as ``hamster dlq list --json`` prints them."""

    def read() -> list[dict[str, Any]]:
        return [listed(number, letter) for number, letter in read_dead_letters(settings)]

    async def list_dead_letters() -> list[dict[str, Any]]:
        return await asyncio.to_thread(read)

    return list_dead_letters


def kafka_replay_dead_letter(settings: Settings) -> ReplayDeadLetter:
    """Send one dead letter back to its source topic, as ``hamster dlq replay NUMBER`` does.

    Raises ``UnknownDeadLetter`` (nothing sent) for a number not in the topic.
    """

    def publish(number: int) -> dict[str, Any]:
        [sent] = replay_dead_letters(settings, [number])
        return asdict(sent)

    async def replay_dead_letter(number: int) -> dict[str, Any]:
        return await asyncio.to_thread(publish, number)

    return replay_dead_letter
