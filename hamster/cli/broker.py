"""`hamster broker start|stop|status`: the local Kafka, one node or a cluster (see hamster.broker)."""

from __future__ import annotations

import click

from hamster.broker import KAFKA_VERSION, BrokerStatus, LocalBroker, NodeStatus
from hamster.cli import fail, settings_or_exit
from hamster.errors import ConfigurationError, HamsterError

NOT_RUNNING = 3  # as in LSB init scripts' `status`: "program is not running"


@click.group()
def broker() -> None:
    """A local Kafka on HAMSTER_KAFKA_BOOTSTRAP, with its data under HAMSTER_HOME (no Docker)."""


@broker.command()
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for the broker to answer.")
@click.option(
    "--nodes",
    type=click.IntRange(1, 9),
    default=None,
    help="Nodes (combined broker and controller) of the cluster, each on its own port, data dir and log: "
    "the bootstrap's ports if it lists one per node, else its port, port + 2, … "
    "[default: as many as HAMSTER_HOME holds, else 1].",
)
def start(timeout: float, nodes: int | None) -> None:
    """Start the broker and wait until it answers.

    It runs in the background and outlives this command; starting a running broker is a no-op, and a
    cluster node that died is started again. Point HAMSTER_KAFKA_BOOTSTRAP at the servers it prints.
    """
    try:
        local = _local(nodes)
        before = local.status()
        status = before if before.running else local.start(timeout_s=timeout)
    except HamsterError as exc:
        _fail(exc)
        return
    prefix = "already " if before.running else ""
    if len(status.nodes) > 1:
        pids = ", ".join(str(node.pid) for node in status.nodes)
        click.echo(
            f"cluster of {len(status.nodes)} nodes {prefix}running on {status.bootstrap} "
            f"(pids {pids}, data {status.data_dir})"
        )
    else:
        click.echo(f"broker {prefix}running on {status.bootstrap} (pid {status.pid}, data {status.data_dir})")


@broker.command()
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait before SIGKILL.")
def stop(timeout: float) -> None:
    """Stop the broker, every node of it at once, cleanly (SIGTERM; SIGKILL only after the timeout)."""
    try:
        local = _local()
        pids = local.stop_nodes(timeout_s=timeout)
    except HamsterError as exc:
        _fail(exc)
        return
    if not pids:
        click.echo(f"broker not running on {local.bootstrap}")
    else:
        click.echo(f"broker stopped (pid{'s' if len(pids) > 1 else ''} {', '.join(map(str, pids))})")


@broker.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Say whether the broker runs (a cluster: each node); exit 0 if every node answers, 3 if not."""
    try:
        current = _local().status()
    except HamsterError as exc:
        _fail(exc)
        return
    click.echo(_describe(current))
    ctx.exit(0 if current.running else NOT_RUNNING)


def _describe(status: BrokerStatus) -> str:
    if len(status.nodes) > 1:
        answering = sum(1 for node in status.nodes if node.running)
        lines = [
            f"cluster of {len(status.nodes)} nodes on {status.bootstrap} (Kafka {KAFKA_VERSION}): "
            f"{answering} of {len(status.nodes)} answering"
        ]
        lines += [f"  node {node.node_id}: {_describe_one(node)}" for node in status.nodes]
        return "\n".join(lines)
    return f"broker {_describe_one(status)}"


def _describe_one(status: BrokerStatus | NodeStatus) -> str:
    where = f"data {status.data_dir}, log {status.log_file}"
    if status.running:
        return f"running on {status.bootstrap} (Kafka {KAFKA_VERSION}, pid {status.pid}, {where})"
    if status.pid is not None:
        return f"not answering on {status.bootstrap} (pid {status.pid}, {where})"
    return f"not running ({status.bootstrap}, {where})"


def _local(nodes: int | None = None) -> LocalBroker:
    return LocalBroker(
        settings_or_exit(), progress=lambda message: click.echo(message, err=True), nodes=nodes
    )


def _fail(exc: HamsterError) -> None:
    fail(str(exc), 2 if isinstance(exc, ConfigurationError) else 1)
