"""`hamster artifacts list|get`: the files a run's stages kept (hamster.execution.artifacts)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from hamster.cli import fail, settings_or_exit
from hamster.cli.runs import find_run
from hamster.errors import TaskError
from hamster.execution.artifacts import ArtifactStore


@click.group()
def artifacts() -> None:
    """The files runs kept."""


@artifacts.command("list")
@click.argument("run_id")
def list_(run_id: str) -> None:
    """The artifacts of a run: name, stage, size."""
    run = find_run(run_id)
    for artifact in ArtifactStore.for_settings(settings_or_exit()).list_run(run["run_id"]):
        click.echo(f"{artifact.name}\t{artifact.stage}\t{artifact.size}")


@artifacts.command("get")
@click.argument("run_id")
@click.argument("name")
@click.option("--stage", help="The stage that kept it, when several kept one of that name.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write it ('-': stdout).")
def get(run_id: str, name: str, stage: str | None, output: Path | None) -> None:
    """Download the artifact NAME of a run (to a file of its name in the current directory)."""
    run = find_run(run_id)
    store = ArtifactStore.for_settings(settings_or_exit())
    try:
        artifact = store.find(run["run_id"], name, [stage] if stage else None)
    except TaskError as exc:
        fail(str(exc))
        return
    if str(output) == "-":
        with store.open(artifact) as source:
            shutil.copyfileobj(source, sys.stdout.buffer)
        return
    target = output or Path(Path(name).name)
    store.download(artifact, target)
    click.echo(f"{target} ({artifact.size} bytes, from stage {artifact.stage})", err=True)
