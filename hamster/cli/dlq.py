"""`hamster dlq list|replay`: the records agents set aside as dead letters, and sending them back."""

from __future__ import annotations

import json

import click

from hamster.cli import fail, settings_or_exit


@click.group()
def dlq() -> None:
    """Dead letters: records an agent could not decode or validate."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (original bytes in base64).")
def list_(as_json: bool) -> None:
    """List the dead letters, oldest first, each with its number (its offset) for `dlq replay`."""
    from hamster.deadletter import decode_dead_letter
    from hamster.errors import BrokerError
    from streams.reader import read_topic
    from streams.topics import dead_letters_topic

    settings = settings_or_exit()
    try:
        records = list(read_topic(settings.kafka_bootstrap, dead_letters_topic(settings)))
    except BrokerError as exc:
        fail(str(exc))
        return
    letters = [(record.offset, decode_dead_letter(record.value)) for record in records]
    if as_json:
        click.echo(json.dumps([{"number": n, **d.model_dump(mode="json")} for n, d in letters], indent=2))
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
    from kafka import KafkaProducer

    from hamster.deadletter import decode_dead_letter
    from hamster.errors import BrokerError
    from streams.reader import read_topic
    from streams.topics import dead_letters_topic

    if not numbers and not everything:
        fail("name the dead letters to replay (numbers from `hamster dlq list`) or pass --all", code=2)
    settings = settings_or_exit()
    try:
        records = {r.offset: r for r in read_topic(settings.kafka_bootstrap, dead_letters_topic(settings))}
    except BrokerError as exc:
        fail(str(exc))
        return
    wanted = sorted(records) if everything else list(numbers)
    unknown = [n for n in wanted if n not in records]
    if unknown:
        fail(f"no dead letter numbered {', '.join(map(str, unknown))}")
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        for number in wanted:
            letter = decode_dead_letter(records[number].value)
            # The original key, so the record lands on the partition it came from.
            sent = producer.send(letter.source_topic, key=letter.key, value=letter.value).get(timeout=30)
            click.echo(f"{number}: replayed to {sent.topic}[{sent.partition}]@{sent.offset}")
    finally:
        producer.close()
