"""Section 4, replay and projection rebuild, timed through Hamster's own commands.

- ``hamster replay events --wait 0`` replays every webhook of a fresh namespace's events topic. The command
  holds the selected envelopes in memory, so it is timed at a size that fits a shared machine; the
  streaming path (read back, mark ``replay_of``, batched produce) is timed at the full 100,000 events.
- ``hamster projection rebuild --into <fresh sqlite>`` applies a run log of complete 3-stage runs.

Topics are filled first (untimed): the events topic with the recorded pull_request envelopes, the run log
with records of the run state machine's own types. Commands are timed on the wall clock, start-up included.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.harness import PYTHON, REPO_ROOT, namespace
from bench.payloads import bodies, headers
from bench.stats import rate
from hamster import ids
from hamster.envelope import decode_envelope, encode_envelope, kafka_headers, parse_webhook
from hamster.github_events import event_info
from hamster.kafka_access import KafkaAccess, aiokafka_options
from hamster.replay import replayed
from hamster.run_events import (
    RunEvent,
    RunRequested,
    RunSucceeded,
    StageStarted,
    StageSucceeded,
    encode_run_event,
)
from hamster.settings import Settings, load_settings
from streams.admin import ensure_topics
from streams.topics import MAX_MESSAGE_BYTES, events_topic, run_events_topic, topic_specs

log = logging.getLogger("bench.history")

BATCH = 500
PIPELINE = ("noop_one", "noop_two", "noop_three")


def _producer(bootstrap: str) -> AIOKafkaProducer:
    # Batched (linger) for bulk writes: the same acks and idempotence as the intake, more per request.
    return AIOKafkaProducer(
        **aiokafka_options(KafkaAccess(bootstrap)),
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES,
        linger_ms=5,
        max_batch_size=1024 * 1024,
    )


async def _produce_all(bootstrap: str, topic: str, records: Any) -> None:
    producer = _producer(bootstrap)
    await producer.start()
    try:
        pending = []
        for key, value, hdrs in records:
            pending.append(await producer.send(topic, value=value, key=key, headers=hdrs))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _read_to_end(bootstrap: str, topic: str, partitions: int) -> Any:
    """Yield each partition's records, in offset order, up to the end offsets at the time of the call."""
    consumer = AIOKafkaConsumer(
        **aiokafka_options(KafkaAccess(bootstrap)),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        left = {tp for tp in assigned if ends[tp] > 0}
        while left:
            batch = await consumer.getmany(*left, timeout_ms=1000, max_records=BATCH)
            for tp, messages in batch.items():
                wanted = [m for m in messages if m.offset < ends[tp]]
                if wanted:
                    yield tp, wanted
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()


def _envelopes(count: int) -> Any:
    pool = []
    for body in bodies():
        envelope = parse_webhook(headers(body), body.raw, datetime.now(UTC))
        pool.append(envelope)
    for i in range(count):
        envelope = pool[i % len(pool)].model_copy(update={"delivery_id": str(uuid.uuid4())})
        yield envelope.key.encode(), encode_envelope(envelope), kafka_headers(envelope)


async def _replay(bootstrap: str, topic: str, partitions: int) -> int:
    producer = _producer(bootstrap)
    await producer.start()
    count = 0
    try:
        pending = []
        async for _tp, messages in _read_to_end(bootstrap, topic, partitions):
            for message in messages:
                envelope = replayed(decode_envelope(message.value), datetime.now(UTC))
                pending.append(
                    await producer.send(
                        topic,
                        value=encode_envelope(envelope),
                        key=message.key,
                        headers=kafka_headers(envelope),
                    )
                )
                count += 1
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


def _runs(records: int) -> Any:
    # RunRequested carries the trigger without its payload, as the match agent writes it.
    info = event_info("pull_request", "-", json.loads(bodies()[0].raw)).model_copy(update={"payload": {}})
    for n in range(records // 8):
        run = ids.run_id(str(uuid.uuid4()), "bench-noop")
        kinds: list[tuple[Any, dict[str, Any]]] = [
            (RunRequested, {"subscriber": "bench-noop", "subscriber_version": "v", "pipeline": PIPELINE,
                            "event": info.model_copy(update={"delivery_id": f"{n}"})}),
        ]  # fmt: skip
        for i, stage in enumerate(PIPELINE):
            kinds.append((StageStarted, {"stage": stage, "index": i, "attempt": 1}))
            kinds.append((StageSucceeded, {"stage": stage, "index": i, "attempt": 1, "duration_ms": 0.1}))
        kinds.append((RunSucceeded, {}))
        for seq, (kind, fields) in enumerate(kinds, start=1):
            record: RunEvent = kind(event_id=ids.event_id(run, seq), run_id=run, seq=seq, **fields)
            yield run.encode(), encode_run_event(record), []


def _hamster(env: dict[str, str], *args: str, timeout: float) -> tuple[float, dict[str, Any]]:
    """Run a `hamster` command; (wall-clock seconds, its --json answer). The time includes its start-up."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "hamster.cli", *args, "--json"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(
            f"hamster {' '.join(args)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
        )
    return seconds, json.loads(done.stdout)


def _namespace(bootstrap: str, home: Path, partitions: int) -> tuple[Settings, dict[str, str]]:
    settings = load_settings(
        kafka_bootstrap=bootstrap, namespace=namespace(), partitions=partitions, home=home
    )
    ensure_topics(settings.kafka, topic_specs(settings))
    env = {
        "HAMSTER_KAFKA_BOOTSTRAP": bootstrap,
        "HAMSTER_NAMESPACE": settings.namespace,
        "HAMSTER_PARTITIONS": str(partitions),
        "HAMSTER_HOME": str(home / settings.namespace),
    }
    return settings, env


def run(
    bootstrap: str, home: Path, *, partitions: int, events: int, cli_events: int, records: int
) -> dict[str, Any]:
    # `hamster replay events`: everything in a namespace's events topic, replayed by the command itself.
    settings, env = _namespace(bootstrap, home, partitions)
    asyncio.run(_produce_all(bootstrap, events_topic(settings), _envelopes(cli_events)))
    cli_s, answer = _hamster(env, "replay", "events", "--wait", "0", timeout=1200)
    replayed = int(answer["events_replayed"])
    log.info("hamster replay events: %d replayed in %.1f s", replayed, cli_s)

    # The streaming path at full size: read back, mark, produce, batched and without holding the topic.
    settings, _ = _namespace(bootstrap, home, partitions)
    asyncio.run(_produce_all(bootstrap, events_topic(settings), _envelopes(events)))
    t0 = time.perf_counter()
    streamed = asyncio.run(_replay(bootstrap, events_topic(settings), partitions))
    stream_s = time.perf_counter() - t0
    log.info("streaming replay path: %d events in %.1f s", streamed, stream_s)

    settings, env = _namespace(bootstrap, home, partitions)
    asyncio.run(_produce_all(bootstrap, run_events_topic(settings), _runs(records)))
    into = f"sqlite:///{home / (settings.namespace + '-rebuild.db')}"
    rebuild_s, summary = _hamster(env, "projection", "rebuild", "--into", into, timeout=1200)
    log.info("hamster projection rebuild: %d records in %.1f s", summary["records"], rebuild_s)
    return {
        "replay": {
            "events_per_s": rate(replayed, cli_s),
            "events": replayed,
            "seconds": cli_s,
            "method": "`hamster replay events --wait 0` over every recorded pull_request webhook in a fresh "
            "namespace, wall clock including the command's start-up",
            "stream_path_events_per_s": rate(streamed, stream_s),
            "stream_path_events": streamed,
            "stream_path_method": "aiokafka read of the events topic, decode, mark replay_of, batched "
            "produce back into the events topic (the path a streaming `hamster replay` would take)",
        },
        "projection": {
            "records_per_s": rate(int(summary["records"]), rebuild_s),
            "records": summary["records"],
            "applied": summary["applied"],
            "seconds": rebuild_s,
            "method": "`hamster projection rebuild --into <fresh sqlite>` over complete 3-stage runs, "
            "wall clock including the command's start-up",
        },
    }
