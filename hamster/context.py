"""The task context ``ctx`` a task function receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hamster.github_events import EventInfo

if TYPE_CHECKING:  # github3 is imported only by hamster.github, and only where GitHub is used
    from hamster.github.objects import EventObjects


@dataclass(frozen=True)
class TaskContext:
    event: EventInfo
    params: dict[str, Any]
    outputs: dict[str, Any]  # earlier stages' outputs, by stage name
    run_id: str
    attempt: int
    subscriber: str
    stage: str
    extras: dict[str, Any] = field(default_factory=dict)
    # ``ctx.github``: the event's connected github3 objects, fetched lazily (hamster.github.objects).
    github: EventObjects | None = None
