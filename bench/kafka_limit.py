"""The Kafka limit, run as its own process: plain aiokafka producing the intake's envelopes.

Same payloads, same envelope encoding, same producer settings as ``streams.producer.EventProducer``
(acks=all, idempotent, linger 0 unless ``--linger-ms``), ``concurrency`` writers each waiting for its
acknowledgement before the next write, like ``concurrency`` webhook requests in flight at the intake.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from bench.payloads import bodies, headers
from hamster.intake.envelope import encode_envelope, kafka_headers, parse_webhook
from hamster.kafka_access import KafkaAccess, aiokafka_options
from streams.topics import MAX_MESSAGE_BYTES


async def produce(
    bootstrap: str, topic: str, concurrency: int, duration: float, linger_ms: int
) -> tuple[list[float], float]:
    """Per-write latencies, and the seconds the writing took (connecting and preparing excluded)."""
    envelopes = []
    for body in bodies():
        envelope = parse_webhook(headers(body, str(uuid.uuid4())), body.raw, datetime.now(UTC))
        envelopes.append((envelope.key.encode(), encode_envelope(envelope), kafka_headers(envelope)))
    cycle = itertools.cycle(envelopes)
    producer = AIOKafkaProducer(
        **aiokafka_options(KafkaAccess(bootstrap)),
        client_id="bench-kafka-limit",
        acks="all",
        enable_idempotence=True,
        max_request_size=MAX_MESSAGE_BYTES,
        linger_ms=linger_ms,
    )
    await producer.start()
    latencies: list[float] = []
    try:
        start = time.perf_counter()
        deadline = start + duration

        async def writer() -> None:
            while time.perf_counter() < deadline:
                key, value, hdrs = next(cycle)
                t0 = time.perf_counter()
                await producer.send_and_wait(topic, value=value, key=key, headers=hdrs)
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(writer() for _ in range(concurrency)))
        window = time.perf_counter() - start
    finally:
        await producer.stop()
    return latencies, window


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_limit")
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--linger-ms", type=int, default=0)
    args = parser.parse_args(argv)
    latencies, window = asyncio.run(
        produce(args.bootstrap, args.topic, args.concurrency, args.duration, args.linger_ms)
    )
    json.dump({"elapsed_s": window, "latencies": latencies}, sys.stdout)


if __name__ == "__main__":
    main()
