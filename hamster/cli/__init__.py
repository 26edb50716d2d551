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
    "artifacts": ("artifacts", "The files runs kept."),
    "broker": (
        "broker",
        "A local Kafka on HAMSTER_KAFKA_BOOTSTRAP, with its data under HAMSTER_HOME (no Docker).",
    ),
    "web": (
        "web",
        "Receive GitHub webhooks and store each delivery in Kafka before answering; serve the dashboard.",
    ),
    "send": ("send", "Post FILE's bytes as a GitHub webhook; exit 0 on a 2xx answer, 1 otherwise."),
    "trigger": ("trigger", "Start a run of SUBSCRIBER on --repo at --ref."),
    "worker": ("worker", "Run a worker: every agent, and stage slots that run pipeline stages."),
    "runs": ("runs", "Show runs and their stages."),
    "subscribers": (
        "subscribers",
        "List subscribers, and turn them off or on across every worker without a restart.",
    ),
    "dev": (
        "dev",
        "Start the local broker, the webhook intake and one worker (example subscribers by default).",
    ),
    "dlq": ("dlq", "Dead letters: records an agent could not decode or validate."),
    "replay": ("replay", "Replay recorded webhooks into matching, or rerun a run."),
    "audit": ("audit", "Check the run log's tamper evidence."),
    "projection": ("projection", "Manage the SQL projection of the run log."),
    "github-app": (
        "github_app",
        "Create the GitHub App Hamster reports as: its manifest, then its credentials.",
    ),
}
"""Command name → its module in this package (which defines a command or group of the same name), and the
line ``hamster --help`` shows for it, so that listing the commands imports none of them (Faust, github3 and
SQLAlchemy load only for the command that runs; tests/unit/cli/test_commands.py keeps the lines true)."""


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs: `hamster runs list` need not load aiohttp,
    the dashboard and Faust first, and `hamster --help` loads none. Click's documented pattern for large
    CLIs: https://click.palletsprojects.com/en/stable/complex/#lazily-loading-subcommands"""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = COMMANDS[cmd_name][0]
        loaded = importlib.import_module(f"hamster.cli.{module}")
        command: click.Command = getattr(loaded, module)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Hamster CI: GitHub events in, pipelines of Python tasks out, every event kept in Kafka.

    Settings come from HAMSTER_* environment variables (see the README).
    """
