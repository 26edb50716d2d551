"""Hamster CI: pipelines of plain Python tasks, run by Faust agents on Kafka, with every event kept.

The public API for subscriber modules is ``Subscriber``, ``task``, ``approval`` and ``Secret``.
"""

from hamster.graph import approval
from hamster.secrets import Secret
from hamster.subscribers import Subscriber
from hamster.task import Task, task

__all__ = ["Secret", "Subscriber", "Task", "approval", "task"]
