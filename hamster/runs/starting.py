"""What a webhook asks of the match agent, and how each run it starts is requested and admitted. Pure.

The match agent (``agents.match``) decodes a webhook, asks these functions, and carries out what they say:

- ``webhook_asks``: whether the webhook may start runs (a comment or deployment status Hamster wrote may
  not, or a comment task could trigger itself), and whether it is an ``/approve``, ``/deny`` or
  ``/ok-to-test`` comment to answer.
- ``run_requested``: the ``RunRequested`` of one matching subscriber's run (not sealed yet: the recorder
  seals it). Its run id is deterministic (delivery id and subscriber), so a webhook processed again lands
  on the same run.
- ``admission``: where the run's first stage request goes: straight to its stage topic, or, when its
  subscriber limits concurrency, filed with the lanes agent (``FileRun``), which starts it when it may.
"""

from __future__ import annotations

from dataclasses import dataclass

from hamster import ids
from hamster.github.forks import decide, is_ok_to_test
from hamster.github.reporting import is_own_comment, is_own_deployment_status
from hamster.intake.envelope import EventEnvelope
from hamster.intake.github_events import EventInfo
from hamster.runs.approvals import Verb, command_of
from hamster.runs.events import RunRequested, RunStage
from hamster.subscribers.concurrency import Policy, lane_of
from hamster.subscribers.dispatch import params_of
from hamster.subscribers.lane_commands import FileRun, lanes_key
from hamster.subscribers.spec import SubscriberSpec


@dataclass(frozen=True)
class Asks:
    """What a webhook asks besides matching: ``may_start`` runs, an approval ``verb`` to carry out for its
    commenter, an ``ok_to_test`` to check."""

    may_start: bool
    verb: Verb | None = None
    ok_to_test: bool = False


def webhook_asks(info: EventInfo) -> Asks:
    """What the webhook ``info`` asks (see the module's docstring)."""
    if is_own_comment(info) or is_own_deployment_status(info):
        return Asks(may_start=False)
    return Asks(may_start=True, verb=command_of(info), ok_to_test=is_ok_to_test(info))


def run_requested(
    envelope: EventEnvelope, spec: SubscriberSpec, info: EventInfo, position: tuple[int, int], report: bool
) -> RunRequested:
    """The ``RunRequested`` of ``spec``'s run of the webhook ``envelope`` (``info``), stored at ``position``
    (events partition, offset). ``report``: whether a replayed webhook's runs report to GitHub."""
    run_id = ids.run_id(envelope.delivery_id, spec.name)
    replay_of = envelope.replay_of
    policy = Policy(spec.concurrency, spec.max_parallel)
    return RunRequested(
        event_id=ids.event_id(run_id, 1),
        run_id=run_id,
        seq=1,
        subscriber=spec.name,
        subscriber_version=spec.version,
        pipeline=spec.pipeline,
        graph=spec.graph,
        params={**spec.params, **params_of(info)},
        event=info.model_copy(update={"payload": {}}),
        events_offset=position,
        # A replayed webhook has a delivery id of its own; its runs link to the original delivery's.
        replay=replay_of is not None,
        replay_of=replay_of,
        original_run_id=ids.run_id(replay_of, spec.name) if replay_of else None,
        report=replay_of is None or report,
        lane=lane_of(info) if policy.governed else None,
        trust=decide(info, trust_forks=spec.trust_forks),
    )


def admission(spec: SubscriberSpec, request: RunStage, lane: str | None) -> RunStage | FileRun:
    """Where the first stage request of ``spec``'s run goes: ``request`` itself to its stage topic, or,
    for a run in a concurrency ``lane``, a ``FileRun`` to the lanes agent, which decides when it starts
    and whether it supersedes runs in flight."""
    if lane is None:
        return request
    return FileRun(
        subscriber=spec.name,
        repo=lanes_key(request.event),
        run_id=request.run_id,
        lane=lane,
        concurrency=spec.concurrency,
        max_parallel=spec.max_parallel,
        request=request.model_dump_json(),
    )
