"""Where a webhook's CPU goes, in process: signature, parsing, and encoding the envelope (per 28 KB body).

These explain the intake's and the match agent's ceilings on a small machine: each figure is paid once per
webhook (signature, parse, encode at the intake; decode in the match agent and again in a replay).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench.payloads import SECRET, bodies, headers
from bench.stats import median
from hamster.intake.envelope import decode_envelope, encode_envelope, parse_webhook
from hamster.intake.signatures import verify_signature


def _us(call: Callable[[], Any], repeat: int) -> float:
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeat):
            call()
        batches.append((time.perf_counter() - t0) / repeat * 1e6)
    return median(batches)


def run(repeat: int = 200) -> dict[str, float]:
    body = bodies()[0]
    hdrs = headers(body, str(uuid.uuid4()))
    now = datetime.now(UTC)
    envelope = parse_webhook(hdrs, body.raw, now)
    raw = encode_envelope(envelope)
    secrets = [SECRET.encode()]
    return {
        "body_bytes": len(body.raw),
        "verify_signature_us": _us(lambda: verify_signature(body.raw, body.signature, secrets), repeat),
        "parse_webhook_us": _us(lambda: parse_webhook(hdrs, body.raw, now), repeat),
        "stdlib_json_loads_us": _us(lambda: json.loads(body.raw), repeat),
        "encode_envelope_us": _us(lambda: encode_envelope(envelope), repeat),
        "stdlib_json_dumps_us": _us(lambda: json.dumps(envelope.payload), repeat),
        "decode_envelope_us": _us(lambda: decode_envelope(raw), repeat),
    }
