"""The webhook intake: an aiohttp app that stores every GitHub delivery in Kafka before answering 2xx.

    POST /webhooks/github   in-flight cap → declared size → body (deadline, size cap after decompression)
                            → signature → parse → append to the events topic → 202 (ping: 200)
    GET  /healthz           the process is up
    GET  /readyz            the broker answers a metadata request and the events topic exists
    GET  /metrics           Prometheus: webhooks received / rejected, intake latency (``hamster.metrics``)

A 2xx means "stored": when the broker is down or the write fails, GitHub gets a 503 and shows a failed
delivery that can be redelivered. Nothing is parsed before the signature is checked.

The intake keeps its own share of the process, so a busy dashboard on the same port cannot starve it:
its own thread pool (``HAMSTER_INTAKE_THREADS``) for checking and parsing large bodies, and a cap on
webhooks in flight (``HAMSTER_INTAKE_MAX_IN_FLIGHT``; past it, 503 with ``Retry-After``, which GitHub
shows as a failed delivery to redeliver). A body must arrive within ``HAMSTER_BODY_TIMEOUT_S`` (408).
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from hamster import logs
from hamster.errors import BrokerError, WebhookRejected
from hamster.intake.envelope import DELIVERY_HEADER, EVENT_HEADER, EventEnvelope, parse_webhook
from hamster.intake.github_events import EVENT_NAMES
from hamster.intake.signatures import verify_signature
from hamster.metrics import CONTENT_TYPE, Metrics
from hamster.settings import Settings
from streams.producer import EventProducer

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/github"
SIGNATURE_HEADER = "X-Hub-Signature-256"
# GitHub caps webhook payloads at 25 MB and drops bigger ones, so a bigger body is not from GitHub:
# https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap
MAX_BODY_BYTES = 25 * 1024 * 1024
# Bodies above this are verified and parsed in a thread, so /healthz stays responsive meanwhile.
_OFF_LOOP_BYTES = 256 * 1024

_UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")

# `hamster web` serves with auto_decompress=False: the intake inflates compressed bodies itself, counting.
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
OPEN_PATHS = frozenset({WEBHOOK_PATH, "/healthz", "/readyz", "/metrics"})  # no login: GitHub, probes
RETRY_AFTER_S = 5

PRODUCER = web.AppKey("producer", EventProducer)
SECRETS = web.AppKey("secrets", tuple[bytes, ...])
METRICS = web.AppKey("metrics", Metrics)


class IntakeLimits:
    """The intake's own thread pool, its count of webhooks in flight, and the body deadline."""

    def __init__(self, threads: int, max_in_flight: int, body_timeout_s: float) -> None:
        self.threads = threads
        self.max_in_flight = max_in_flight
        self.body_timeout_s = body_timeout_s
        self.in_flight = 0
        self.pool: ThreadPoolExecutor | None = None

    async def run(self, function: Any, *args: Any) -> Any:
        assert self.pool is not None
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)


LIMITS = web.AppKey("limits", IntakeLimits)


def create_intake_app(
    settings: Settings, producer: EventProducer, metrics: Metrics | None = None
) -> web.Application:
    """The intake app; it starts and stops ``producer`` (and its thread pool) with itself."""
    # aiohttp enforces client_max_size while reading the body, so an oversized one is never buffered whole;
    # it counts the bytes after decompression, so a small gzip bomb is refused as its inflated size.
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[PRODUCER] = producer
    app[SECRETS] = tuple(settings.secrets())
    app[METRICS] = metrics if metrics is not None else Metrics()
    app[LIMITS] = IntakeLimits(
        settings.intake_threads, settings.intake_max_in_flight, settings.body_timeout_s
    )
    app.cleanup_ctx.append(_run_producer)
    app.cleanup_ctx.append(_run_pool)
    app.router.add_post(WEBHOOK_PATH, receive_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", serve_metrics)
    return app


async def receive_webhook(request: web.Request) -> web.Response:
    limits = request.app[LIMITS]
    if limits.in_flight >= limits.max_in_flight:
        request.app[METRICS].webhook_rejected(503)
        log.warning("503: %d webhooks in flight already", limits.in_flight)
        return web.json_response(
            {"error": f"{limits.in_flight} webhooks in flight; redeliver later"},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S), "Connection": "close"},
        )
    limits.in_flight += 1
    try:
        return await _receive(request, limits)
    finally:
        limits.in_flight -= 1


async def _receive(request: web.Request, limits: IntakeLimits) -> web.Response:
    received_at = datetime.now(UTC)
    # What the request claims to be; unverified until the signature is checked, so logged only if printable.
    claimed = (
        f"delivery {_loggable(request.headers.get(DELIVERY_HEADER))} "
        f"event {_loggable(request.headers.get(EVENT_HEADER))}"
    )
    try:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise WebhookRejected(413, f"body over {MAX_BODY_BYTES} bytes")
        try:
            async with asyncio.timeout(limits.body_timeout_s):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise WebhookRejected(413, f"body over {MAX_BODY_BYTES} bytes") from None
        except TimeoutError:
            raise WebhookRejected(
                408, f"the body did not arrive within {limits.body_timeout_s:g} s"
            ) from None
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding != "identity":
            body = await limits.run(_inflate, body, encoding)
        secrets = request.app[SECRETS]
        if len(body) > _OFF_LOOP_BYTES:
            envelope = await limits.run(_accept, request.headers, body, secrets, received_at)
        else:
            envelope = _accept(request.headers, body, secrets, received_at)
        partition, offset = await request.app[PRODUCER].append(envelope)
    except WebhookRejected as exc:
        request.app[METRICS].webhook_rejected(exc.status)
        log.info("%s: %d %s", claimed, exc.status, exc.reason)
        refused = web.json_response({"error": exc.reason}, status=exc.status)
        if exc.status in (408, 413):
            refused.force_close()  # the rest of the body is not read: the connection cannot be reused
        return refused
    except BrokerError as exc:
        request.app[METRICS].webhook_rejected(503)
        log.warning("%s: 503 not stored: %s", claimed, exc)
        return web.json_response({"error": "the event store is unavailable; redeliver later"}, status=503)
    # ping asks for nothing to be done, only for proof the hook arrives: 200. Everything else is queued: 202.
    status = 200 if envelope.event == "ping" else 202
    request.app[METRICS].webhook_stored(envelope.event, (datetime.now(UTC) - received_at).total_seconds())
    logs.bind(delivery_id=envelope.delivery_id)
    where = f"{request.app[PRODUCER].topic}[{partition}]@{offset}"
    log.info("delivery %s event %s: %d stored at %s", envelope.delivery_id, envelope.event, status, where)
    return web.json_response(
        {"delivery_id": envelope.delivery_id, "partition": partition, "offset": offset}, status=status
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def serve_metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def readyz(request: web.Request) -> web.Response:
    if await request.app[PRODUCER].ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "unavailable"}, status=503)


def _accept(
    headers: Mapping[str, str], body: bytes, secrets: tuple[bytes, ...], received_at: datetime
) -> EventEnvelope:
    """Signature first, then parsing: an unsigned body is never looked at.

    https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    """
    if not verify_signature(body, headers.get(SIGNATURE_HEADER), secrets):
        raise WebhookRejected(401, f"missing or wrong {SIGNATURE_HEADER}")
    return parse_webhook(headers, body, received_at)


def _inflate(body: bytes, encoding: str) -> bytes:
    """A compressed body inflated, never past ``MAX_BODY_BYTES``: a gzip bomb stops at the cap (413)."""
    if encoding not in _ENCODINGS:
        raise WebhookRejected(415, f"Content-Encoding {encoding[:20]!r}: only gzip and deflate")
    inflater = zlib.decompressobj(_ENCODINGS[encoding])
    try:
        inflated = inflater.decompress(body, MAX_BODY_BYTES + 1)
        if len(inflated) > MAX_BODY_BYTES or inflater.unconsumed_tail:
            raise WebhookRejected(413, f"decompressed body over {MAX_BODY_BYTES} bytes")
        inflated += inflater.flush()
    except zlib.error:
        raise WebhookRejected(400, f"the body is not valid {encoding}") from None
    if not inflater.eof:
        raise WebhookRejected(400, f"the body is a truncated {encoding} stream")
    return inflated


def _loggable(value: str | None) -> str:
    # Unverified, so logged only in the shape GitHub gives it (a UUID, a known event name): whatever else a
    # caller puts in these headers (a token, say, or forged log lines) never reaches the log.
    if value is None:
        return "-"
    return value if value in EVENT_NAMES or _UUID_SHAPE.fullmatch(value) else "(malformed)"


async def _run_pool(app: web.Application) -> AsyncIterator[None]:
    limits = app[LIMITS]
    limits.pool = ThreadPoolExecutor(limits.threads, thread_name_prefix="intake")
    yield
    limits.pool.shutdown(wait=False, cancel_futures=True)


async def _run_producer(app: web.Application) -> AsyncIterator[None]:
    producer = app[PRODUCER]
    await producer.start()
    yield
    await producer.stop()
