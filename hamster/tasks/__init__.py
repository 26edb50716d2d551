"""Hamster's built-in tasks: ``checkout``, ``shell``, and tasks that write to the event's pull request.

from hamster.tasks import checkout, comment, shell

Subscriber("ci", events=["pull_request"], report=True,
           pipeline=[checkout, shell("pytest -q", name="tests"), comment("Tests passed.")])
"""

from __future__ import annotations

from hamster.tasks.checkout import checkout
from hamster.tasks.github_tasks import add_labels, assign, comment, merge, remove_labels
from hamster.tasks.shell import shell

__all__ = ["add_labels", "assign", "checkout", "comment", "merge", "remove_labels", "shell"]
