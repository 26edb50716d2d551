"""Servers the benchmark runs as processes of their own: ``python -m bench.servers http-limit|celery-web``.

- ``http-limit``: Hamster's own intake app and handler, with a producer that stores nothing. It verifies the
  signature and parses the envelope exactly as the intake does, then answers: the HTTP limit.
- ``celery-web``: the original Hamster's design, a minimal aiohttp webhook view that verifies the signature
  and hands a chain of three no-op tasks to Celery over Redis (``--pipeline slow``: one blocking task).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from aiohttp import web

from hamster.intake.envelope import DELIVERY_HEADER, EventEnvelope
from hamster.intake.http import SIGNATURE_HEADER, WEBHOOK_PATH, create_intake_app
from hamster.intake.signatures import verify_signature
from hamster.kafka_access import KafkaAccess
from hamster.settings import load_settings
from streams.producer import EventProducer


class NullProducer(EventProducer):
    """An ``EventProducer`` that acknowledges every envelope without sending it anywhere."""

    def __init__(self) -> None:
        super().__init__(KafkaAccess("127.0.0.1:1"), "bench.null")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def append(self, envelope: EventEnvelope) -> tuple[int, int]:
        return 0, 0

    async def ready(self) -> bool:
        return True


def http_limit_app(secret: str) -> web.Application:
    settings = load_settings(webhook_secret=secret, kafka_bootstrap="127.0.0.1:1")
    return create_intake_app(settings, NullProducer())


def celery_web_app(secret: str, pipeline: str = "chain") -> web.Application:
    from bench.celery_app import start_pipeline, start_slow

    secrets = [secret.encode()]
    start = start_slow if pipeline == "slow" else start_pipeline

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), secrets):
            return web.json_response({"error": "bad signature"}, status=401)
        delivery = request.headers.get(DELIVERY_HEADER, "")
        # As the original view did: parse, then enqueue the chain (a Redis LPUSH) before answering.
        start(delivery, json.loads(body))
        return web.json_response({"delivery_id": delivery}, status=202)

    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.router.add_post(WEBHOOK_PATH, receive)
    app.router.add_get("/healthz", lambda _: _ok())
    return app


async def _ok() -> web.Response:
    return web.json_response({"status": "ok"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=["http-limit", "celery-web"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--pipeline", choices=["chain", "slow"], default="chain", help="celery-web's tasks")
    args = parser.parse_args(argv)
    # Logged like `hamster web` logs (INFO, one line per delivery), so the baseline pays the same.
    logging.basicConfig(
        filename=args.log, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.kind == "http-limit":
        app = http_limit_app(args.secret)
    else:
        app = celery_web_app(args.secret, args.pipeline)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
