"""The task context ``ctx`` a task function receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hamster.intake.github_events import EventInfo

if TYPE_CHECKING:  # github3 is imported only by hamster.github, and only where GitHub is used
    from hamster.execution.artifacts import StageArtifacts
    from hamster.github.objects import EventObjects


class LogSink(Protocol):
    """Where an attempt's log goes: the worker's ``hamster.execution.stage_logs.StageLog``, or, in a task
    process, the socket back to the worker."""

    def write(self, stream: Any, text: str) -> None: ...

    def add_secret(self, secret: str) -> None: ...


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
    # Where ``ctx.log`` writes: the stage's log in ``<ns>.logs`` (None outside a worker: nowhere).
    log_sink: LogSink | None = field(default=None, repr=False, compare=False)
    # ``ctx.artifacts``: save files of this stage, get those of earlier stages (hamster.execution.artifacts).
    artifacts: StageArtifacts | None = field(default=None, repr=False, compare=False)
    # ``ctx.secrets``: the secrets the subscriber was granted (hamster.execution.secrets), none in an
    # untrusted run.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # False in a run of a fork's pull request nobody vouched for (hamster.github.forks): no GitHub writes.
    trusted: bool = True
    # Every secret value the worker masks (its settings', the secrets source's): what ``shell`` masks in the
    # log file it keeps and in its output.
    masked: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def log(self, *parts: object, stream: str = "log") -> None:
        """Write a line to the stage's log (``print``-like: parts joined by spaces, a newline added)."""
        if self.log_sink is not None:
            self.log_sink.write(stream, " ".join(str(part) for part in parts) + "\n")

    def mask(self, secret: str) -> None:
        """Mask ``secret`` in this stage's log from now on (the worker's own secrets always are)."""
        if self.log_sink is not None:
            self.log_sink.add_secret(secret)
