"""Subscribers: which GitHub events start which pipeline. Declared in code, published as data.

A developer writes ``Subscriber(...)`` objects in a module named by ``HAMSTER_SUBSCRIBERS``. Workers load
that module once at start (``load_catalog``), check it, and publish each subscriber's ``SubscriberSpec`` (the
filters, task names and params, with a content hash as its version) to the subscribers topic. The ``when``
predicate is code: it stays in the module and the spec names it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from hamster.errors import ConfigurationError
from hamster.execution.secrets import check_name
from hamster.intake.github_events import EVENT_NAMES, EventInfo
from hamster.pipelines.graph import Approval, Matrix, Stage, StageSpec, expand, is_line
from hamster.pipelines.task import Task
from hamster.subscribers.concurrency import CONCURRENCY_MODES, Concurrency
from hamster.subscribers.dispatch import SCHEDULE_EVENT
from hamster.subscribers.schedules import check

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SubscriberSpec(BaseModel):
    """A subscriber as data: what goes on the wire and into the subscribers table."""

    model_config = ConfigDict(frozen=True)

    name: str
    events: tuple[str, ...]
    actions: tuple[str, ...] | None = None
    repos: tuple[str, ...] | None = None
    branches: tuple[str, ...] | None = None
    paths: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None
    commands: tuple[str, ...] | None = None
    environments: tuple[str, ...] | None = None  # deployment events: the deployment's environment
    when: str | None = None  # "module.qualname" of the predicate; the code stays in the module
    pipeline: tuple[str, ...]  # every stage's name (matrix instances one by one), each after its needs
    # The stages as a graph (hamster.pipelines.graph), by name; empty: a line, each stage needing the one
    # before.
    graph: dict[str, StageSpec] = {}
    params: dict[str, Any] = {}
    concurrency: Concurrency = "parallel"  # see hamster.subscribers.concurrency
    max_parallel: int | None = None  # runs of this subscriber running at once per repository
    report: bool = False  # commit statuses on the event's sha
    status_context: str | None = None  # the statuses' and check run's name; None: hamster/<name>
    checks: bool = False  # a check run per run (the token needs the Checks API)
    # cron: a run per tick on each of ``repos`` and ``branches`` (hamster.subscribers.schedules)
    schedule: str | None = None
    # The secrets its stages get (hamster.execution.secrets), by name; whether a fork's pull request gets them
    # too.
    secrets: tuple[str, ...] = ()
    trust_forks: bool = False
    version: str = ""

    def with_version(self) -> SubscriberSpec:
        body = self.model_dump(mode="json", exclude={"version"})
        # Unused, the fields added since leave the version what it was before them.
        for added in ("graph", "schedule", "secrets", "trust_forks"):
            if not body[added]:
                del body[added]
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        return self.model_copy(update={"version": digest.hexdigest()[:16]})


def _tuple(name: str, field: str, value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):  # a lone string is a common slip: ["push"] was meant
        value = [value]
    items = tuple(value)
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ConfigurationError(f"subscriber {name}: {field} must be a non-empty list of strings")
    return items


class Subscriber:
    """Run ``pipeline`` for each GitHub event that passes every filter given.

    ``pipeline``: a list of stages (a line), or a dict mapping each stage to the stages it needs (a graph);
    a stage is a task, ``task.matrix(...)`` or ``approval(...)`` (``hamster.pipelines.graph``).
    Filters are OR within a field and AND across fields; a field left out matches anything.
    ``concurrency`` ("parallel", "cancel-superseded" or "serial", per pull request or branch) and
    ``max_parallel`` (running runs per repository) limit how its runs go side by side
    (hamster.subscribers.concurrency). ``secrets``: the names of the secrets its stages get
    (hamster.execution.secrets); a fork's pull request gets them only after an ``/ok-to-test`` from a writer,
    or always with ``trust_forks=True`` (hamster.github.forks).
    """

    def __init__(
        self,
        name: str,
        *,
        events: Sequence[str] | None = None,
        pipeline: Sequence[Stage] | Mapping[Stage, Sequence[Stage | str]],
        actions: Sequence[str] | None = None,
        repos: Sequence[str] | None = None,
        branches: Sequence[str] | None = None,
        paths: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        commands: Sequence[str] | None = None,
        environments: Sequence[str] | None = None,
        when: Callable[[EventInfo], bool] | None = None,
        params: dict[str, Any] | None = None,
        concurrency: Concurrency = "parallel",
        max_parallel: int | None = None,
        report: bool = False,
        status_context: str | None = None,
        checks: bool = False,
        schedule: str | None = None,
        secrets: Sequence[str] = (),
        trust_forks: bool = False,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(f"subscriber name {name!r}: use letters, digits, '.', '_' or '-'")
        event_names = _tuple(name, "events", events)
        if schedule is not None:
            check(schedule, name)
            event_names = event_names or (SCHEDULE_EVENT,)
            literal = all(not set(r) & set("*?[") for r in (*(repos or ()), *(branches or ())))
            if not repos or not branches or not literal:
                raise ConfigurationError(
                    f"subscriber {name}: a schedule needs repos and branches, named without wildcards"
                )
        if event_names is None:
            raise ConfigurationError(f"subscriber {name}: events is required")
        unknown = sorted(set(event_names) - EVENT_NAMES - {"*", SCHEDULE_EVENT})
        if unknown:
            raise ConfigurationError(f"subscriber {name}: unknown GitHub event name(s) {', '.join(unknown)}")
        graph = expand(name, pipeline)
        items: list[Stage] = list(pipeline)
        if when is not None and not callable(when):
            raise ConfigurationError(f"subscriber {name}: when must be a function of the event")
        try:
            json.dumps(params or {})
        except TypeError as exc:
            raise ConfigurationError(f"subscriber {name}: params must be JSON-serialisable: {exc}") from None
        if concurrency not in CONCURRENCY_MODES:
            raise ConfigurationError(
                f"subscriber {name}: concurrency must be one of {', '.join(CONCURRENCY_MODES)}"
            )
        if max_parallel is not None and (isinstance(max_parallel, bool) or max_parallel < 1):
            raise ConfigurationError(f"subscriber {name}: max_parallel must be a positive integer")
        if isinstance(secrets, str):
            secrets = [secrets]
        granted = tuple(check_name(secret) for secret in secrets)
        self.name = name
        self.pipeline = tuple(items)
        self.tasks = tuple(
            item.task if isinstance(item, Matrix) else item
            for item in items
            if not isinstance(item, Approval)
        )
        self.when = when
        self.spec = SubscriberSpec(
            name=name,
            events=event_names,
            actions=_tuple(name, "actions", actions),
            repos=_tuple(name, "repos", repos),
            branches=_tuple(name, "branches", branches),
            paths=_tuple(name, "paths", paths),
            labels=_tuple(name, "labels", labels),
            commands=_tuple(name, "commands", commands),
            environments=_tuple(name, "environments", environments),
            when=f"{when.__module__}.{when.__qualname__}" if when is not None else None,
            pipeline=tuple(graph),
            graph={} if is_line(graph) else graph,
            params=dict(params or {}),
            concurrency=concurrency,
            max_parallel=max_parallel,
            report=bool(report),
            status_context=status_context,
            checks=bool(checks),
            schedule=schedule,
            secrets=granted,
            trust_forks=bool(trust_forks),
        ).with_version()

    def __repr__(self) -> str:
        return f"Subscriber({self.name!r}, version={self.spec.version})"


@dataclass(frozen=True)
class Catalog:
    """A loaded, checked subscribers module: its subscribers and every task their pipelines name."""

    module: str
    subscribers: tuple[Subscriber, ...]
    tasks: dict[str, Task]

    def get(self, name: str) -> Subscriber | None:
        return next((s for s in self.subscribers if s.name == name), None)

    @property
    def specs(self) -> tuple[SubscriberSpec, ...]:
        return tuple(s.spec for s in self.subscribers)


def build_catalog(module: str, subscribers: Iterable[Any]) -> Catalog:
    """Check a list of subscribers: unique names, and one function per task name."""
    items = list(subscribers)
    for item in items:
        if not isinstance(item, Subscriber):
            raise ConfigurationError(f"{module}: SUBSCRIBERS holds {item!r}, which is not a Subscriber")
    names = [s.name for s in items]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigurationError(f"{module}: duplicate subscriber name(s) {', '.join(duplicated)}")
    tasks: dict[str, Task] = {}
    for sub in items:
        for stage in sub.tasks:
            known = tasks.setdefault(stage.name, stage)
            if known.fn is not stage.fn:
                raise ConfigurationError(
                    f"{module}: two different functions are both named task {stage.name!r}"
                )
    return Catalog(module=module, subscribers=tuple(items), tasks=tasks)


def load_catalog(module: str | None) -> Catalog:
    """Import the subscribers module and check it; every problem is one clear ConfigurationError."""
    if not module:
        raise ConfigurationError("HAMSTER_SUBSCRIBERS: not set; name the module that defines SUBSCRIBERS")
    # Like ``python -m``: a module in the working directory can be named without installing it.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module)
    except ConfigurationError as exc:
        raise ConfigurationError(f"HAMSTER_SUBSCRIBERS={module}: {exc}") from None
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise ConfigurationError(
            f"HAMSTER_SUBSCRIBERS={module}: cannot import it: {type(exc).__name__}: {exc} "
            f"({where.filename}:{where.lineno})"
        ) from None
    subscribers = getattr(mod, "SUBSCRIBERS", None)
    if not isinstance(subscribers, list | tuple):
        raise ConfigurationError(f"HAMSTER_SUBSCRIBERS={module}: the module defines no SUBSCRIBERS list")
    return build_catalog(module, subscribers)
