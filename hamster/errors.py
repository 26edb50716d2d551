"""Hamster's exceptions.

Every error Hamster raises on purpose derives from ``HamsterError`` and says whether retrying can help::

    HamsterError
    ├── ConfigurationError      a setting or the subscribers module is wrong; fix it and restart
    ├── WebhookRejected         a webhook request is refused (carries the HTTP status to answer)
    ├── InvalidTransition       a run event does not fit the run's current state
    ├── TaskError               a task failed (raised by Hamster around user code)
    │   ├── TaskTimeout         a task ran past its timeout
    │   ├── ArtifactRefused     a file or glob may not become an artifact (hamster.execution.artifacts; not
    retried) │   └── ArtifactNotFound    no artifact of that name in the run (hamster.execution.artifacts; not
    retried) ├── BrokerError             the local Kafka broker could not be started, stopped or reached
    ├── GitHubCallFailed        GitHub refused or failed a call (hamster.github.client; retryable)
    ├── AppAuthFailed           GitHub gave the app no token or installation (hamster.github.app; retryable)
    └── UnknownDeadLetter       a dead letter asked for by number is not in the dead-letters topic
"""

from __future__ import annotations


class HamsterError(Exception):
    """Base of every error Hamster raises on purpose."""

    retryable: bool = False


class ConfigurationError(HamsterError):
    """A setting or the subscribers module is wrong. Retrying cannot help: fix it and restart."""


class WebhookRejected(HamsterError):
    """A webhook request is refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class InvalidTransition(HamsterError):
    """A run event does not fit the run's current state (a bug or a duplicate record)."""

    def __init__(self, run_id: str, state: str, event: str, detail: str = "") -> None:
        message = f"run {run_id}: {event} is not allowed in state {state}"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.run_id = run_id
        self.state = state
        self.event = event


class TaskError(HamsterError):
    """A task failed. User exceptions are recorded as they are; this wraps Hamster's own reasons."""

    retryable = True


class TaskTimeout(TaskError):
    """A task ran past its timeout."""


class BrokerError(HamsterError):
    """The local Kafka broker could not be started, stopped or reached."""

    retryable = True


class UnknownDeadLetter(HamsterError):
    """Dead letters asked for by number are not in the dead-letters topic (never there, or past retention)."""

    def __init__(self, numbers: list[int]) -> None:
        super().__init__(f"no dead letter numbered {', '.join(map(str, numbers))}")
        self.numbers = numbers
