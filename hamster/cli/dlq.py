"""`hamster dlq list|replay`: the records agents set aside as dead letters, and sending them back.

The reading and sending are ``streams.dead_letter_store``'s, shared with the dashboard's API; this module
prints.
"""

from __future__ import annotations

import json

import click

from hamster.cli import fail, settings_or_exit
from hamster.errors import BrokerError, UnknownDeadLetter
from streams.dead_letter_codec import listed
from streams.dead_letter_store import read_dead_letters, replay_dead_letters


@click.group()
def dlq() -> None:
    """Dead letters: records an agent could not decode or validate.

    With HAMSTER_API_TOKEN set, `hamster web` serves the same (bearer token required):

    \b
        GET  /api/dead-letters
        POST /api/dead-letters/NUMBER/replay
    """


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (original bytes in base64).")
def list_(as_json: bool) -> None:
    """List the dead letters, oldest first, each with its number (its offset) for `dlq replay`."""
    settings = settings_or_exit()
    try:
        letters = read_dead_letters(settings)
    except BrokerError as exc:
        fail(str(exc))
        return
    if as_json:
        click.echo(json.dumps([listed(n, d) for n, d in letters], indent=2))
        return
    for number, letter in letters:
        where = f"{letter.source_topic}[{letter.partition}]@{letter.offset}"
        when = f"{letter.dead_at:%Y-%m-%d %H:%M:%S}"
        click.echo(f"{number:>6}  {when}  {letter.agent}  {where}  {letter.reason}")
    if not letters:
        click.echo("no dead letters")


@dlq.command("replay")
@click.argument("numbers", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
def replay(numbers: tuple[int, ...], everything: bool) -> None:
    """Append the original bytes of dead letters NUMBERS (or --all) to their source topics again."""
    if not numbers and not everything:
        fail("name the dead letters to replay (numbers from `hamster dlq list`) or pass --all", code=2)
    settings = settings_or_exit()
    try:
        sending = replay_dead_letters(settings, None if everything else numbers)
    except (BrokerError, UnknownDeadLetter) as exc:
        fail(str(exc))
        return
    for sent in sending:
        click.echo(f"{sent.number}: replayed to {sent.topic}[{sent.partition}]@{sent.offset}")
