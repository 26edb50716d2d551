"""Rerunning a recorded run: read it back from the run log, and ask a worker to start its next attempt.

Used by ``hamster replay run``, by the dashboard's replay button and by GitHub's "Re-run" on a check run
(``agents.check_actions``).
"""

from __future__ import annotations

from kafka import KafkaProducer
from kafka.errors import KafkaError

from hamster.errors import ConfigurationError, InvalidTransition
from hamster.intake.envelope import decode_envelope
from hamster.intake.github_events import EventInfo, event_info
from hamster.runs.audit import seal_next
from hamster.runs.events import RunEvent, RunRequested, StartRun, decode_run_event, stage_request
from hamster.runs.lifecycle import RunState, evolve
from hamster.runs.replay import rerun, stage_index
from hamster.settings import Settings
from streams.kafka_python import connect
from streams.reader import read_at, read_topic
from streams.topics import (
    MAX_MESSAGE_BYTES,
    events_topic,
    run_control_topic,
    run_events_topic,
    stage_topic,
)


def rerun_run(
    settings: Settings,
    run_id: str,
    from_stage: str | None,
    report: bool,
    *,
    from_failed_stage: bool = False,
    requested_by: str | None = None,
    delivery_id: str | None = None,
) -> RunRequested:
    """Rerun ``run_id`` (or a unique prefix) as its next attempt, from ``from_stage``.

    ``from_failed_stage``: without ``from_stage``, from the stage that failed (from the start if none did).
    ``requested_by``: who asked (a GitHub login), kept on the rerun's ``RunRequested``.
    ``delivery_id``: the GitHub webhook that asked. It names the rerun (``hamster.runs.replay.rerun``): when
    the log already has the rerun it asked for (the webhook was redelivered), that one is returned and nothing
    is sent; a second ``StartRun`` sent before the first was recorded lands on the same run.

    Returns the new run's ``RunRequested`` once the command to start it (``StartRun``, on the run-control
    topic) is in Kafka: a worker appends the record through its recorder, like every run-log record.
    """
    records = [decode_run_event(r.value) for r in read_topic(settings.kafka, run_events_topic(settings))]
    requests = [r for r in records if isinstance(r, RunRequested)]
    original = _the_run(settings, requests, run_id)
    state = _state_of(records, original)
    first_run = original.original_run_id or original.run_id
    attempts = [r.attempt for r in requests if first_run in (r.run_id, r.original_run_id)]
    if from_failed_stage and from_stage is None:
        from_stage = next((stage.name for stage in state.stages if stage.status == "failed"), None)
    start = stage_index(original.pipeline, from_stage)
    new, _ = seal_next(
        None,
        rerun(original, state, start, attempts, report, delivery_id).model_copy(
            update={"requested_by": requested_by}
        ),
    )
    done = next((r for r in requests if r.run_id == new.run_id), None)
    if done is not None:
        return done
    info = _webhook_of(settings, original)
    request = stage_request(new, info, index=start)  # the worker appending the RunRequested sets its offset
    _send(settings, StartRun(requested=new, request=request))
    return new


def _the_run(settings: Settings, requests: list[RunRequested], run_id: str) -> RunRequested:
    """The ``RunRequested`` of the run ``run_id`` names, whole or by a unique prefix of four or more."""
    matches = [r for r in requests if r.run_id == run_id] or [
        r for r in requests if len(run_id) >= 4 and r.run_id.startswith(run_id)
    ]
    if len({r.run_id for r in matches}) != 1:
        raise ConfigurationError(
            f"no run {run_id} in the run log (retention: {settings.retention_days} days)"
            if not matches
            else f"{run_id} names several runs; give more of the id"
        )
    return matches[0]


def _state_of(records: list[RunEvent], original: RunRequested) -> RunState:
    """The run's state, folded from its records (starting with ``original``)."""
    state = evolve(None, original)
    for record in records:
        if record.run_id == original.run_id and record is not original:
            try:
                state = evolve(state, record)
            except InvalidTransition:
                continue  # a record written twice: the first copy already counts
    return state


def _webhook_of(settings: Settings, original: RunRequested) -> EventInfo:
    """The facts of the webhook that started ``original``, read back from the events topic."""
    if original.events_offset is None:
        raise ConfigurationError(
            f"run {original.run_id} does not say where its webhook is in the events topic"
        )
    partition, offset = original.events_offset
    found = read_at(settings.kafka, events_topic(settings), partition, offset)
    if found is None:
        raise ConfigurationError(
            f"the webhook of run {original.run_id} (events {partition}/{offset}) is no longer in the events "
            f"topic (retention: {settings.retention_days} days, HAMSTER_RETENTION_DAYS)"
        )
    envelope = decode_envelope(found.value)
    return event_info(envelope.event, original.event.delivery_id, envelope.payload)


def _send(settings: Settings, command: StartRun) -> None:
    """Put ``command`` on the run-control topic, acknowledged; refused when no worker has the stage's task."""
    producer = connect(
        KafkaProducer,
        settings.kafka,
        acks="all",
        max_request_size=MAX_MESSAGE_BYTES,
        max_block_ms=15_000,  # a missing topic (auto-creation is off) fails fast instead of after 60 s
    )
    try:
        topic = stage_topic(settings, command.request.stage)
        try:
            producer.partitions_for(topic)
        except KafkaError:
            raise ConfigurationError(
                f"no topic {topic}: no worker has registered task {command.request.stage}"
            ) from None
        producer.send(
            run_control_topic(settings),
            key=command.requested.run_id.encode(),
            value=command.model_dump_json().encode(),
        ).get(timeout=30)
    finally:
        producer.close()
