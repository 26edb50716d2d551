"""`hamster send`: post a saved payload to an intake, signed as GitHub would."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import click

from hamster.cli import fail, settings_or_exit
from hamster.intake.sender import DEFAULT_URL, SendFailed, github_headers, post_webhook


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--event", required=True, help="The X-GitHub-Event header, e.g. push or pull_request.")
@click.option("--url", default=DEFAULT_URL, show_default=True, help="The intake's webhook URL.")
@click.option("--secret", help="Webhook secret. [default: the first of HAMSTER_WEBHOOK_SECRET]")
@click.option("--delivery", type=click.UUID, help="X-GitHub-Delivery. [default: a new UUID]")
def send(file: Path, event: str, url: str, secret: str | None, delivery: uuid.UUID | None) -> None:
    """Post FILE's bytes as a GitHub webhook; exit 0 on a 2xx answer, 1 otherwise."""
    if secret is None:
        secrets = settings_or_exit().secrets()
        if not secrets:
            fail("no secret: pass --secret or set HAMSTER_WEBHOOK_SECRET", code=2)
        key = secrets[0]
    else:
        key = secret.encode()
    body = file.read_bytes()
    headers = github_headers(body, event, key, str(delivery) if delivery else None)
    try:
        reply = asyncio.run(post_webhook(url, body, headers))
    except SendFailed as exc:
        fail(str(exc))
        return
    click.echo(f"{reply.status} {reply.reason}")
    if reply.body:
        click.echo(reply.body)
    raise SystemExit(0 if reply.ok else 1)
