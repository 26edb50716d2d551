"""One module per agent, in flow order: subscribers, schedules (announces schedule ticks as events; not a
Faust agent), match, lanes, stages (this worker's stage slots: not a Faust agent, see its docstring),
run_control (cancels, reruns and approvals), projection, reporting, check_actions (GitHub's buttons on the
check runs reporting made), audit_checkpoints (signs checkpoints of the run log: not a Faust agent).

``plumbing`` is what they share (decode-or-dead-letter, the subscribers table, the run view and recorder):
the one module of this package an agent imports."""

from __future__ import annotations

from sqlalchemy import Engine

from agents import (
    audit_checkpoints,
    check_actions,
    lanes,
    match,
    projection,
    reporting,
    run_control,
    schedules,
    stages,
    subscribers,
)
from agents.plumbing import RunRecorder, RunView
from streams.app import Streams
from streams.stall_watch import watch_stalls


def register_all(streams: Streams, engine: Engine) -> None:
    # One view of the runs in flight and one recorder per worker, shared by every agent that writes runs.
    view = RunView(streams.settings, [t.get_topic_name() for t in streams.stages.values()], streams.metrics)
    recorder = RunRecorder(streams, view)
    subscribers.register(streams)
    match.register(streams, recorder)
    # Nothing else notices a webhook the match agent never got (the reaper sees only runs requested).
    watch_stalls(streams.app, [streams.events.get_topic_name()], streams.metrics)
    lanes.register(streams)
    stages.register(streams, view, recorder)
    run_control.register(streams, recorder)
    projection.register(streams, engine)
    reporting.register(streams)
    check_actions.register(streams, view)
    schedules.register(streams)
    audit_checkpoints.register(streams)
