"""`hamster trigger`: start a run of one subscriber by hand, on a branch, without pushing."""

from __future__ import annotations

import getpass
import json

import click

from hamster.cli import fail, settings_or_exit
from hamster.errors import HamsterError
from streams.dispatch import trigger_run


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--param {pair!r}: give it as KEY=VALUE", code=2)
        params[key] = value
    return params


@click.command()
@click.argument("subscriber")
@click.option("--repo", required=True, help="The repository, OWNER/NAME.")
@click.option("--ref", required=True, help="The branch (or full ref, or sha) to run on.")
@click.option(
    "--param", "params", multiple=True, help="KEY=VALUE, over the subscriber's params (repeatable)."
)
@click.option("--as", "sender", default=None, help="Who asks, for the run log. [default: your login]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def trigger(
    subscriber: str, repo: str, ref: str, params: tuple[str, ...], sender: str | None, as_json: bool
) -> None:
    """Start a run of SUBSCRIBER on --repo at --ref: the commit is resolved through the GitHub API and a
    workflow_dispatch-like event goes to the events topic, so the run replays like any other."""
    settings = settings_or_exit()
    try:
        sent = trigger_run(settings, subscriber, repo, ref, _params(params), sender or getpass.getuser())
    except HamsterError as exc:
        fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps(sent))
    else:
        click.echo(f"run {sent['run_id']} of {subscriber} on {repo} {sent['ref']} at {sent['sha'][:10]}")
