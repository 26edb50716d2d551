"""Progress of a long command on stderr: a rich bar on a terminal, a plain line every few seconds otherwise
(a CI log or a pipe), nothing with ``quiet`` (``--json``). stdout stays the command's answer."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

PLAIN_EVERY_S = 5.0

Advance = Callable[[int], None]


@contextmanager
def progress(what: str, total: int | None, quiet: bool) -> Iterator[Advance]:
    """Yields ``advance(n)``: ``n`` more done of ``total`` (None: unknown)."""
    if quiet:
        yield lambda n: None
        return
    if sys.stderr.isatty():
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        with bar:
            task = bar.add_task(what, total=total)
            yield lambda n: bar.advance(task, n)
        return
    done = 0
    started = last = time.monotonic()

    def line() -> str:
        rate = done / max(time.monotonic() - started, 1e-9)
        return f"{what}: {done:,}" + (f" of {total:,}" if total is not None else "") + f" ({rate:,.0f}/s)"

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= PLAIN_EVERY_S:
            last = now
            click.echo(line(), err=True)

    yield advance
    if last > started:  # said something before: say where it ended
        click.echo(line(), err=True)
