"""The webhook intake: an aiohttp app that stores every GitHub delivery in Kafka before answering 2xx.

    POST /webhooks/github   size cap → signature → parse → append to the events topic → 202 (ping: 200)
    GET  /healthz           the process is up
    GET  /readyz            the broker answers a metadata request and the events topic exists
    GET  /metrics           Prometheus: webhooks received / rejected, intake latency (``hamster.metrics``)

A 2xx means "stored": when the broker is down or the write fails, GitHub gets a 503 and shows a failed
delivery that can be redelivered. Nothing is parsed before the signature is checked.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

from aiohttp import web

from hamster import logs
from hamster.envelope import DELIVERY_HEADER, EVENT_HEADER, EventEnvelope, parse_webhook
from hamster.errors import BrokerError, WebhookRejected
from hamster.github_events import EVENT_NAMES
from hamster.metrics import CONTENT_TYPE, Metrics
from hamster.settings import Settings
from hamster.signatures import verify_signature
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

PRODUCER = web.AppKey("producer", EventProducer)
SECRETS = web.AppKey("secrets", tuple[bytes, ...])
METRICS = web.AppKey("metrics", Metrics)


def create_intake_app(
    settings: Settings, producer: EventProducer, metrics: Metrics | None = None
) -> web.Application:
    """The intake app; it starts and stops ``producer`` with itself."""
    # aiohttp enforces client_max_size while reading the body, so an oversized one is never buffered whole.
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[PRODUCER] = producer
    app[SECRETS] = tuple(settings.secrets())
    app[METRICS] = metrics if metrics is not None else Metrics()
    app.cleanup_ctx.append(_run_producer)
    app.router.add_post(WEBHOOK_PATH, receive_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", serve_metrics)
    return app


async def receive_webhook(request: web.Request) -> web.Response:
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
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise WebhookRejected(413, f"body over {MAX_BODY_BYTES} bytes") from None
        secrets = request.app[SECRETS]
        if len(body) > _OFF_LOOP_BYTES:
            envelope = await asyncio.to_thread(_accept, request.headers, body, secrets, received_at)
        else:
            envelope = _accept(request.headers, body, secrets, received_at)
        partition, offset = await request.app[PRODUCER].append(envelope)
    except WebhookRejected as exc:
        request.app[METRICS].webhook_rejected(exc.status)
        log.info("%s: %d %s", claimed, exc.status, exc.reason)
        return web.json_response({"error": exc.reason}, status=exc.status)
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


def _loggable(value: str | None) -> str:
    # Unverified, so logged only in the shape GitHub gives it (a UUID, a known event name): whatever else a
    # caller puts in these headers (a token, say, or forged log lines) never reaches the log.
    if value is None:
        return "-"
    return value if value in EVENT_NAMES or _UUID_SHAPE.fullmatch(value) else "(malformed)"


async def _run_producer(app: web.Application) -> AsyncIterator[None]:
    producer = app[PRODUCER]
    await producer.start()
    yield
    await producer.stop()
