"""The ``hamster`` command. Each subcommand lives in a module of its own in this package."""

from __future__ import annotations

import sys

import click

from hamster.errors import HamsterError
from hamster.settings import Settings, load_settings


def settings_or_exit(**overrides: object) -> Settings:
    """Read the settings once (``overrides``: from command-line options); a bad setting ends the command
    with one line naming it."""
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except HamsterError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Hamster CI: GitHub events in, pipelines of Python tasks out, every event kept in Kafka.

    Settings come from HAMSTER_* environment variables (see the README).
    """


def _register() -> None:
    from hamster.cli import artifacts, broker, dev, dlq, runs, send, subscribers, trigger, web, worker

    for command in (
        artifacts.artifacts,
        broker.broker,
        web.web,
        send.send,
        trigger.trigger,
        worker.worker,
        runs.runs,
        subscribers.subscribers,
        dev.dev,
        dlq.dlq,
    ):
        main.add_command(command)
    from hamster.cli import audit, github_app, projection, replay  # replay and audit: their own groups

    for group in (replay.replay, audit.audit, projection.projection, github_app.github_app):
        main.add_command(group)


_register()
