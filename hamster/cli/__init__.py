"""The ``hamster`` command. Each subcommand lives in a module of its own in this package."""

from __future__ import annotations

import importlib
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


COMMANDS = {
    "artifacts": "artifacts",
    "broker": "broker",
    "web": "web",
    "send": "send",
    "trigger": "trigger",
    "worker": "worker",
    "runs": "runs",
    "subscribers": "subscribers",
    "dev": "dev",
    "dlq": "dlq",
    "replay": "replay",
    "audit": "audit",
    "projection": "projection",
    "github-app": "github_app",
}
"""Command name → its module in this package (which defines a command or group of the same name)."""


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs (or ``--help`` lists them): `hamster runs
    list` need not load aiohttp, the dashboard and Faust first. Click's documented pattern for large CLIs:
    https://click.palletsprojects.com/en/stable/complex/#lazily-loading-subcommands"""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        loaded = importlib.import_module(f"hamster.cli.{module}")
        command: click.Command = getattr(loaded, module)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Hamster CI: GitHub events in, pipelines of Python tasks out, every event kept in Kafka.

    Settings come from HAMSTER_* environment variables (see the README).
    """
