"""Pipelines as graphs: which stages a pipeline has, what each needs, and what a matrix expands into.

A subscriber's ``pipeline`` is a list (a line: each stage needs the one before it) or a dict mapping each
stage to the stages it needs (a graph). A stage is a task, a matrix of a task (``unit.matrix(python=[...])``,
expanded here into one instance per combination, named by its values: ``unit[python=3.11]``) or an
approval (``approval("ship")``: a stage no worker runs, that a person ends). A need naming a matrix means
every one of its instances.

``expand`` turns either form into ``StageSpec`` data, in an order where every stage comes after the stages
it needs; that data goes into the subscriber's spec and each run's ``RunRequested``, so the run log alone
says what each stage needs (``hamster.runs.lifecycle`` folds it). A cycle or a need that names no stage is a
``ConfigurationError``: the worker refuses to start with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from hamster.errors import ConfigurationError
from hamster.pipelines.task import Task


class StageSpec(BaseModel):
    """One stage of a run, as data: on the wire in subscriber specs and ``RunRequested`` records."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    needs: tuple[str, ...] = ()  # the stages (instance names) that must succeed before it starts
    task: str | None = None  # the task that runs it; None: the task named like the stage
    params: dict[str, Any] = {}  # a matrix instance's values, in ``ctx.params`` over the run's params
    matrix: str | None = None  # the matrix this instance is one of
    fail_fast: bool = False  # a failed instance cancels its siblings
    approval: bool = False  # no task: a person approves or denies it
    timeout_s: float | None = None  # an approval nobody decided within this fails


@dataclass(frozen=True)
class Matrix:
    """``task.matrix(...)``: the task once per combination of the axes' values."""

    task: Task
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    exclude: tuple[tuple[tuple[str, Any], ...], ...] = ()
    include: tuple[tuple[tuple[str, Any], ...], ...] = ()
    fail_fast: bool = False

    @property
    def name(self) -> str:
        return self.task.name

    def combinations(self) -> list[dict[str, Any]]:
        """The instances' values: the axes' product, less what ``exclude`` matches, plus ``include``.

        An ``exclude`` entry removes every combination it agrees with on all its keys. An ``include`` entry
        adds its extra keys to the combinations it agrees with on the axes it names, or is a combination
        of its own when it agrees with none (as GitHub Actions does).
        """
        names = [n for n, _ in self.axes]
        combos = [
            dict(zip(names, values, strict=True)) for values in itertools.product(*(v for _, v in self.axes))
        ]
        for rule in self.exclude:
            combos = [c for c in combos if not all(c.get(k) == v for k, v in rule)]
        for rule in self.include:
            entry = dict(rule)
            on_axes = {k: v for k, v in entry.items() if k in names}
            matched = [c for c in combos if all(c.get(k) == v for k, v in on_axes.items())]
            extends = set(entry) - set(names)
            if matched and extends:
                for combo in matched:
                    combo.update(entry)
            elif entry not in combos:
                combos.append(entry)
        return combos


@dataclass(frozen=True)
class Approval:
    """``approval(name)``: a stage that waits for a person (``/approve`` or the dashboard's button)."""

    name: str
    timeout_s: float | None = None


def approval(name: str, *, timeout_s: float | None = None) -> Approval:
    """A stage that waits for a person with write permission to approve it; ``timeout_s``: then it fails."""
    if timeout_s is not None and timeout_s <= 0:
        raise ConfigurationError(f"approval {name}: timeout_s must be positive")
    return Approval(name, timeout_s)


Stage = Task | Matrix | Approval


def matrix(
    task: Task,
    *,
    exclude: Sequence[Mapping[str, Any]] = (),
    include: Sequence[Mapping[str, Any]] = (),
    fail_fast: bool = False,
    **axes: Sequence[Any],
) -> Matrix:
    if not axes:
        raise ConfigurationError(f"matrix of {task.name}: give at least one axis")
    for axis, values in axes.items():
        if isinstance(values, str) or not list(values):
            raise ConfigurationError(f"matrix of {task.name}: axis {axis} needs a non-empty list of values")
    built = Matrix(
        task,
        tuple((k, tuple(v)) for k, v in axes.items()),
        tuple(tuple(dict(e).items()) for e in exclude),
        tuple(tuple(dict(e).items()) for e in include),
        bool(fail_fast),
    )
    if not built.combinations():
        raise ConfigurationError(f"matrix of {task.name}: exclude leaves no instance")
    return built


def instance_name(stage: str, values: Mapping[str, Any]) -> str:
    """``unit[python=3.11,db=sqlite]``."""
    return f"{stage}[{','.join(f'{k}={v}' for k, v in values.items())}]"


def _name(item: Any) -> str:
    if isinstance(item, Task | Matrix | Approval):
        return item.name
    if isinstance(item, str):
        return item
    raise ConfigurationError(f"pipeline item {item!r} is not a task, a matrix or an approval")


MAX_STAGE_NAME = 100  # the projection's stages.name column


def _specs(item: Stage, needs: tuple[str, ...]) -> dict[str, StageSpec]:
    if isinstance(item, Matrix):
        too_long = [n for v in item.combinations() if len(n := instance_name(item.name, v)) > MAX_STAGE_NAME]
        if too_long:
            raise ConfigurationError(
                f"matrix of {item.name}: instance name {too_long[0]!r} is over {MAX_STAGE_NAME} characters"
            )
        return {
            instance_name(item.name, values): StageSpec(
                needs=needs, task=item.task.name, params=values, matrix=item.name, fail_fast=item.fail_fast
            )
            for values in item.combinations()
        }
    if isinstance(item, Approval):
        return {item.name: StageSpec(needs=needs, approval=True, timeout_s=item.timeout_s)}
    return {item.name: StageSpec(needs=needs)}


def expand(subscriber: str, pipeline: Sequence[Any] | Mapping[Any, Sequence[Any]]) -> dict[str, StageSpec]:
    """Every stage of ``pipeline`` with what it needs, each after its needs. Raises ``ConfigurationError``."""
    if isinstance(pipeline, Mapping):
        items = list(pipeline)
        declared = {_name(item): [_name(n) for n in pipeline[item]] for item in items}
    else:
        items = list(pipeline)
        names = [_name(item) for item in items]
        declared = {name: names[i - 1 : i] for i, name in enumerate(names)}
    if not items:
        raise ConfigurationError(f"subscriber {subscriber}: pipeline is empty")
    for item in items:
        if not isinstance(item, Task | Matrix | Approval):
            raise ConfigurationError(
                f"subscriber {subscriber}: pipeline item {item!r} is not a task (decorate it with @task)"
            )
    names = [_name(item) for item in items]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigurationError(
            f"subscriber {subscriber}: task(s) {', '.join(duplicated)} appear twice in one pipeline "
            "(stage outputs are keyed by task name)"
        )
    for name, needs in declared.items():
        unknown = sorted(set(needs) - set(names))
        if unknown:
            raise ConfigurationError(
                f"subscriber {subscriber}: stage {name} needs unknown stage(s) {unknown}"
            )
    ordered = _topological(subscriber, names, declared)
    by_name = dict(zip(names, items, strict=True))
    out: dict[str, StageSpec] = {}
    for name in ordered:
        wanted = tuple(n for need in declared[name] for n in out if n == need or out[n].matrix == need)
        out.update(_specs(by_name[name], wanted))
    return out


def _topological(subscriber: str, names: list[str], needs: dict[str, list[str]]) -> list[str]:
    """``names`` with each after what it needs, declaration order otherwise; raises on a cycle."""
    done: list[str] = []
    left = list(names)
    while left:
        ready = [n for n in left if all(need in done for need in needs[n])]
        if not ready:
            raise ConfigurationError(
                f"subscriber {subscriber}: the pipeline has a cycle among {sorted(left)}"
            )
        done.append(ready[0])
        left.remove(ready[0])
    return done


def is_line(stages: Mapping[str, StageSpec]) -> bool:
    """Whether the stages are a plain line of tasks: each needs the one before, nothing else to say."""
    names = list(stages)
    return all(spec == StageSpec(needs=tuple(names[i - 1 : i])) for i, spec in enumerate(stages.values()))


def admission_index(pipeline: Sequence[str], stages: Mapping[str, StageSpec]) -> int:
    """The stage whose topic a run's stage request goes to: its first stage that a task runs."""
    return next((i for i, n in enumerate(pipeline) if not (n in stages and stages[n].approval)), 0)
