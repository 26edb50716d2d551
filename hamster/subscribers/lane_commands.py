"""Commands on the lanes topic (key: repository), which the lanes agent folds into its books.

``FileRun``: the match agent found a run of a subscriber that limits its concurrency; file it in its lane,
with the first-stage request to send when it may start. ``RunDone``: the run ended (succeeded, failed or
cancelled); take it out, so the runs waiting behind it can start. Both may arrive more than once: filing or
finishing a run twice is one change (``hamster.subscribers.concurrency``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hamster.intake.github_events import EventInfo
from hamster.subscribers.concurrency import Concurrency, Policy


class _LaneCommand(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    subscriber: str
    repo: str
    run_id: str

    @property
    def book(self) -> str:
        """The lanes table's key: one book per subscriber and repository."""
        return f"{self.subscriber}\x1f{self.repo}"


class FileRun(_LaneCommand):
    type: Literal["FileRun"] = "FileRun"
    lane: str
    concurrency: Concurrency
    max_parallel: int | None = None
    request: str  # the first stage's RunStage, JSON

    @property
    def policy(self) -> Policy:
        return Policy(self.concurrency, self.max_parallel)


class RunDone(_LaneCommand):
    type: Literal["RunDone"] = "RunDone"


LaneCommand = Annotated[FileRun | RunDone, Field(discriminator="type")]
LANE_COMMAND: TypeAdapter[FileRun | RunDone] = TypeAdapter(LaneCommand)


def lanes_key(info: EventInfo) -> str:
    """The lanes topic's key for an event's runs: its repository, like the events topic's key."""
    return info.repo or "-"
