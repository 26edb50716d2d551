"""`hamster dev`: the whole system on this machine, in the foreground, until Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import click

from hamster.broker import LocalBroker
from hamster.cli import fail, settings_or_exit
from hamster.errors import HamsterError


@click.command()
@click.option("--port", default=8080, show_default=True, type=int, help="Webhook intake port.")
@click.option("--web-port", default=6066, show_default=True, type=int, help="The worker's Faust web port.")
def dev(port: int, web_port: int) -> None:
    """Start the local broker, the webhook intake and one worker (example subscribers by default)."""
    settings = settings_or_exit()
    # Ctrl-C, and SIGTERM from a supervisor, both stop everything cleanly (a shell that starts us in the
    # background leaves SIGINT ignored, so install the handler explicitly).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    env.setdefault("HAMSTER_SUBSCRIBERS", "hamster.examples")
    secret = os.environ.get("HAMSTER_WEBHOOK_SECRET") or secrets.token_hex(16)
    env["HAMSTER_WEBHOOK_SECRET"] = secret
    # The dashboard needs a login: with none configured, one operate token for this session.
    dashboard_token = None
    if not (settings.api_credentials() or settings.github_oauth_client_id or settings.dashboard_public):
        dashboard_token = secrets.token_hex(16)
        env["HAMSTER_API_TOKENS"] = f"dev:operate:{dashboard_token}"
    broker = LocalBroker(settings)
    was_running = broker.status().running
    try:
        status = broker.start()
    except HamsterError as exc:
        fail(str(exc))
    click.echo(f"broker   {status.bootstrap} (data {status.data_dir})")
    hamster = [sys.executable, "-m", "hamster.cli.__main__"]
    children = [
        subprocess.Popen([*hamster, "web", "--port", str(port)], env=env),
        subprocess.Popen([*hamster, "worker", "--web-port", str(web_port)], env=env),
    ]
    click.echo(f"intake   http://127.0.0.1:{port}/webhooks/github   (secret: {secret})")
    signin = f"   (sign in with the token {dashboard_token})" if dashboard_token else ""
    click.echo(f"dashboard http://127.0.0.1:{port}/runs{signin}")
    click.echo(f"worker   subscribers {env['HAMSTER_SUBSCRIBERS']}, Faust web http://127.0.0.1:{web_port}/")
    click.echo(
        "try      hamster send tests/fixtures/github/webhooks/pull_request/opened.payload.json "
        f"--event pull_request --secret {secret}"
    )
    click.echo("then     hamster runs list          (Ctrl-C stops everything)")
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        fail("a child process exited; stopping")
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        if not was_running:
            broker.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
