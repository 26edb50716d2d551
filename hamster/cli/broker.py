"""`hamster broker start|stop|status`: the local single-node Kafka (see hamster.broker)."""

from __future__ import annotations

import click

from hamster.broker import KAFKA_VERSION, BrokerStatus, LocalBroker
from hamster.cli import fail, settings_or_exit
from hamster.errors import ConfigurationError, HamsterError

NOT_RUNNING = 3  # as in LSB init scripts' `status`: "program is not running"


@click.group()
def broker() -> None:
    """A local Kafka on HAMSTER_KAFKA_BOOTSTRAP, with its data under HAMSTER_HOME (no Docker)."""


@broker.command()
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for the broker to answer.")
def start(timeout: float) -> None:
    """Start the broker and wait until it answers.

    It runs in the background and outlives this command; starting a running broker is a no-op.
    """
    try:
        local = _local()
        before = local.status()
        status = before if before.running else local.start(timeout_s=timeout)
    except HamsterError as exc:
        _fail(exc)
        return
    prefix = "already " if before.running else ""
    click.echo(f"broker {prefix}running on {status.bootstrap} (pid {status.pid}, data {status.data_dir})")


@broker.command()
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait before SIGKILL.")
def stop(timeout: float) -> None:
    """Stop the broker cleanly (SIGTERM; SIGKILL only after the timeout)."""
    try:
        local = _local()
        pid = local.stop(timeout_s=timeout)
    except HamsterError as exc:
        _fail(exc)
        return
    click.echo(f"broker not running on {local.bootstrap}" if pid is None else f"broker stopped (pid {pid})")


@broker.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Say whether the broker runs; exit 0 if it answers, 3 if not."""
    try:
        current = _local().status()
    except HamsterError as exc:
        _fail(exc)
        return
    click.echo(_describe(current))
    ctx.exit(0 if current.running else NOT_RUNNING)


def _describe(status: BrokerStatus) -> str:
    where = f"data {status.data_dir}, log {status.log_file}"
    if status.running:
        return f"broker running on {status.bootstrap} (Kafka {KAFKA_VERSION}, pid {status.pid}, {where})"
    if status.pid is not None:
        return f"broker not answering on {status.bootstrap} (pid {status.pid}, {where})"
    return f"broker not running ({status.bootstrap}, {where})"


def _local() -> LocalBroker:
    return LocalBroker(settings_or_exit(), progress=lambda message: click.echo(message, err=True))


def _fail(exc: HamsterError) -> None:
    fail(str(exc), 2 if isinstance(exc, ConfigurationError) else 1)
