"""One module per agent, in flow order: subscribers, match, lanes, stages, cancellations, projection,
reporting, check_actions (GitHub's buttons on the check runs reporting made)."""

from __future__ import annotations

from sqlalchemy import Engine

from agents import (
    cancellations,
    check_actions,
    lanes,
    match,
    projection,
    reporting,
    stages,
    subscribers,
)
from streams.app import Streams
from streams.run_recorder import RunRecorder


def register_all(streams: Streams, engine: Engine) -> None:
    # The stage agents and the cancellation agent act on the same runs: one recorder serves them both.
    recorder = RunRecorder(streams)
    subscribers.register(streams)
    match.register(streams)
    lanes.register(streams)
    stages.register(streams, recorder)
    cancellations.register(streams, recorder)
    projection.register(streams, engine)
    reporting.register(streams)
    check_actions.register(streams)
