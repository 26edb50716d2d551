"""Hamster CI: pipelines of plain Python tasks, run by Faust agents on Kafka, with every event kept.

The public API for subscriber modules is ``Subscriber``, ``task``, ``approval`` and ``Secret``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported now, not lazily: importing any module that imports the submodule ``hamster.task`` would set the
# package's ``task`` attribute to that module, and ``from hamster import task`` would hand it out.
from hamster.task import Task, task

if TYPE_CHECKING:
    from hamster.graph import approval
    from hamster.secrets import Secret
    from hamster.subscribers import Subscriber

__all__ = ["Secret", "Subscriber", "Task", "approval", "task"]

# Loaded on first use (PEP 562): every `hamster` command imports this package, and most (`hamster runs
# list`, say) never touch subscribers; importing them (croniter and the graph code) cost a few hundred ms.
_EXPORTS = {"Subscriber": "hamster.subscribers", "approval": "hamster.graph", "Secret": "hamster.secrets"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hamster' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
