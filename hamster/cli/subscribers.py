"""`hamster subscribers list|disable|enable`: the subscribers table, from its history topic."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from hamster.cli import fail, settings_or_exit
from hamster.errors import HamsterError
from hamster.runs.audit import subscriber_history
from hamster.subscribers.changes import SubscriberDisabled, SubscriberEnabled
from streams.admin import publish_subscriber_change
from streams.reader import subscriber_changes, subscribers_now
from streams.topics import subscribers_topic


@click.group()
def subscribers() -> None:
    """List subscribers, and turn them off or on across every worker without a restart."""


@subscribers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_(as_json: bool) -> None:
    """The subscribers table as the workers published it."""
    settings = settings_or_exit()
    try:
        states = subscribers_now(settings)
    except HamsterError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps([s.model_dump(mode="json") for _, s in sorted(states.items())], indent=2))
        return
    table = Table("name", "enabled", "events", "pipeline", "version", "changed")
    for name, state in sorted(states.items()):
        table.add_row(
            name,
            "yes" if state.enabled else "no",
            ",".join(state.spec.events),
            " → ".join(state.spec.pipeline),
            state.spec.version,
            state.changed_at.isoformat()[:19],
        )
    Console().print(table)


def _publish(name: str, enable: bool) -> None:
    settings = settings_or_exit()
    try:
        states = subscribers_now(settings)
    except HamsterError as exc:
        fail(str(exc))
    if name not in states:
        fail(f"no subscriber named {name!r} (known: {', '.join(sorted(states)) or 'none'})")
    change = SubscriberEnabled(name=name) if enable else SubscriberDisabled(name=name)
    publish_subscriber_change(
        settings.kafka, subscribers_topic(settings), name, change.model_dump_json().encode()
    )
    click.echo(
        f"subscriber {name} {'enabled' if enable else 'disabled'}; every worker applies it on its next event"
    )


@subscribers.command()
@click.argument("name")
def disable(name: str) -> None:
    """Stop NAME from starting new runs, on every worker."""
    _publish(name, enable=False)


@subscribers.command()
@click.argument("name")
def enable(name: str) -> None:
    """Let NAME start runs again."""
    _publish(name, enable=True)


@subscribers.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def history(name: str | None, as_json: bool) -> None:
    """What changed in the subscribers table, and when (NAME: one subscriber only)."""
    settings = settings_or_exit()
    try:
        entries = subscriber_history(subscriber_changes(settings), name)
    except HamsterError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps([{**e.__dict__, "at": e.at.isoformat()} for e in entries], indent=2))
        return
    for e in entries:
        click.echo(
            f"{e.at.isoformat()[:19]}  {e.name:<20} {e.change:<20} version {e.version}  "
            f"{'enabled' if e.enabled else 'disabled'}  changed: {', '.join(e.changed_fields)}  by {e.by}"
        )
