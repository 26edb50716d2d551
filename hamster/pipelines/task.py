"""The ``@task`` decorator: a developer's Python function becomes a named pipeline stage.

Task *names* go on the wire (stage topics are named after them); Python import paths never do.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from hamster.errors import ConfigurationError

if TYPE_CHECKING:
    from hamster.pipelines.graph import Matrix

# Task names become Kafka topic names (``<namespace>.stage.<task>``): keep to Kafka's legal characters.
_TASK_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class Task:
    """A pipeline stage: a plain or async function of one argument, the task context."""

    name: str
    fn: Callable[[Any], Any]
    timeout: float | None = None
    retries: int = 0

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def __call__(self, ctx: Any) -> Any:
        return self.fn(ctx)

    def matrix(
        self,
        *,
        exclude: Any = (),
        include: Any = (),
        fail_fast: bool = False,
        **axes: Any,
    ) -> Matrix:
        """This task once per combination of the axes' values (``hamster.pipelines.graph``): a stage of
        parallel instances, each with its values in ``ctx.params``."""
        from hamster.pipelines.graph import matrix  # the graph module builds on tasks

        return matrix(self, exclude=exclude, include=include, fail_fast=fail_fast, **axes)


def _make(fn: Callable[[Any], Any], name: str | None, timeout: float | None, retries: int) -> Task:
    task_name = name or fn.__name__
    if not _TASK_NAME.match(task_name):
        raise ConfigurationError(
            f"task name {task_name!r}: use letters, digits, '_' or '-' (it names a Kafka topic)"
        )
    if timeout is not None and timeout <= 0:
        raise ConfigurationError(f"task {task_name}: timeout must be positive, got {timeout}")
    if retries < 0:
        raise ConfigurationError(f"task {task_name}: retries must be >= 0, got {retries}")
    return Task(name=task_name, fn=fn, timeout=timeout, retries=retries)


@overload
def task(fn: Callable[[Any], Any], /) -> Task: ...


@overload
def task(
    *, name: str | None = None, timeout: float | None = None, retries: int = 0
) -> Callable[[Callable[[Any], Any]], Task]: ...


def task(
    fn: Callable[[Any], Any] | None = None,
    /,
    *,
    name: str | None = None,
    timeout: float | None = None,
    retries: int = 0,
) -> Task | Callable[[Callable[[Any], Any]], Task]:
    """Declare a task: ``@task`` or ``@task(name=..., timeout=seconds, retries=n)``."""
    if fn is not None:
        return _make(fn, None, None, 0)

    def decorate(f: Callable[[Any], Any]) -> Task:
        return _make(f, name, timeout, retries)

    return decorate
