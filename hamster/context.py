"""The task context ``ctx`` a task function receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hamster.github_events import EventInfo


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
