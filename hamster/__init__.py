"""Hamster CI: pipelines of plain Python tasks, run by Faust agents on Kafka, with every event kept.

The public API for subscriber modules: ``Subscriber``, ``task``, ``approval``, ``Secret``, ``NonRetryable``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hamster.execution.outcome import NonRetryable
    from hamster.execution.secrets import Secret
    from hamster.pipelines.graph import approval
    from hamster.pipelines.task import Task, task
    from hamster.subscribers.spec import Subscriber

__all__ = ["NonRetryable", "Secret", "Subscriber", "Task", "approval", "task"]

# Loaded on first use (PEP 562): every `hamster` command imports this package, and most (`hamster runs
# list`, say) never touch subscribers; importing them (croniter and the graph code) cost a few hundred ms.
_EXPORTS = {
    "NonRetryable": "hamster.execution.outcome",
    "Subscriber": "hamster.subscribers.spec",
    "Task": "hamster.pipelines.task",
    "task": "hamster.pipelines.task",
    "approval": "hamster.pipelines.graph",
    "Secret": "hamster.execution.secrets",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hamster' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
