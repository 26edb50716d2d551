"""What a webhook asks of the match agent, and how each run it starts is requested and admitted."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime

from hamster import Subscriber, approval, ids, task
from hamster.intake.envelope import EventEnvelope, envelope_for
from hamster.intake.github_events import EventInfo, event_info
from hamster.runs.approvals import refusal
from hamster.runs.events import RunStage, stage_request
from hamster.runs.starting import Asks, admission, run_requested, webhook_asks
from hamster.subscribers.lane_commands import FileRun
from tests.samples import from_fork, load

DELIVERY = str(uuid.UUID(int=1))


@task
def build(ctx):
    return None


@task
def check(ctx):
    return None


def spec(**options):
    return Subscriber("s", pipeline=[build], events=["pull_request"], **options).spec


def envelope(payload=None, event="pull_request", replay_of=None) -> EventEnvelope:
    payload = payload or load("pull_request", "opened.payload.json")
    found = envelope_for(event, DELIVERY, payload, received_at=datetime(2026, 11, 30, tzinfo=UTC))
    return found.model_copy(update={"replay_of": replay_of})


def info_of(env: EventEnvelope) -> EventInfo:
    return event_info(env.event, env.delivery_id, env.payload)


def comment(body: str) -> EventInfo:
    payload = copy.deepcopy(load("issue_comment", "created.payload.json"))
    payload["comment"]["body"] = body
    payload["issue"]["pull_request"] = {"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"}
    return event_info("issue_comment", DELIVERY, payload)


def test_a_webhook_may_start_runs_and_says_which_command_it_carries():
    """A pull request starts runs; /approve and /ok-to-test comments say so too."""
    assert webhook_asks(info_of(envelope())) == Asks(may_start=True)
    assert webhook_asks(comment("/approve")) == Asks(may_start=True, verb="approve")
    assert webhook_asks(comment("/ok-to-test")) == Asks(may_start=True, ok_to_test=True)


def test_a_comment_hamster_wrote_starts_nothing_and_asks_nothing():
    """Hamster's own comments carry its marker: they neither start runs nor count as commands."""
    own = refusal("mallory", "Codertocat/Hello-World", "approve", "read")
    assert webhook_asks(comment(f"/approve\n{own}")) == Asks(may_start=False)


def test_the_run_requested_has_a_deterministic_id_and_the_events_position():
    """The same webhook and subscriber give the same run id; the record says where the webhook is."""
    env = envelope()
    first = run_requested(env, spec(), info_of(env), (3, 42), report=False)
    again = run_requested(env, spec(), info_of(env), (3, 42), report=False)
    assert first.run_id == again.run_id == ids.run_id(DELIVERY, "s")
    assert first.events_offset == (3, 42) and first.seq == 1 and first.hash == ""
    assert first.event.payload == {} and first.report and not first.replay and first.lane is None
    assert first.trust.trusted


def test_a_replayed_webhooks_run_links_to_the_original_and_reports_only_if_asked():
    """A replay's run names the original delivery's run and stays quiet unless asked to report."""
    original = str(uuid.UUID(int=2))
    env = envelope(replay_of=original)
    quiet = run_requested(env, spec(), info_of(env), (0, 0), report=False)
    assert quiet.replay and quiet.original_run_id == ids.run_id(original, "s") and not quiet.report
    assert run_requested(env, spec(), info_of(env), (0, 0), report=True).report


def test_a_forks_run_is_untrusted_unless_its_subscriber_trusts_forks():
    """Trust is decided when the run is requested, from the subscriber's trust_forks."""
    env = envelope(from_fork(load("pull_request", "opened.payload.json"), "mallory"))
    assert not run_requested(env, spec(), info_of(env), (0, 0), report=False).trust.trusted
    assert run_requested(env, spec(trust_forks=True), info_of(env), (0, 0), report=False).trust.trusted


def test_an_ungoverned_run_goes_straight_to_its_stage_topic():
    """Without a concurrency limit the first stage request itself is what is sent."""
    env = envelope()
    requested = run_requested(env, spec(), info_of(env), (0, 0), report=False)
    request = stage_request(requested, info_of(env), 7)
    assert admission(spec(), request, requested.lane) is request


def test_a_governed_run_is_filed_in_its_lane_with_its_first_stage_request():
    """A subscriber that limits concurrency files the run with the lanes agent, request inside."""
    sub = spec(concurrency="cancel-superseded")
    env = envelope()
    requested = run_requested(env, sub, info_of(env), (0, 0), report=False)
    assert requested.lane is not None
    request = stage_request(requested, info_of(env), 7)
    filed = admission(sub, request, requested.lane)
    assert isinstance(filed, FileRun)
    assert filed.lane == requested.lane and filed.concurrency == "cancel-superseded"
    assert filed.repo == "Codertocat/Hello-World" and filed.run_id == requested.run_id
    assert RunStage.model_validate_json(filed.request) == request


def test_a_stage_request_goes_to_the_first_stage_a_task_runs():
    """An approval stage first: the request names the stage after it, and carries the log offset."""
    sub = Subscriber("s", pipeline={approval("ship"): [], build: ["ship"]}, events=["pull_request"]).spec
    env = envelope()
    requested = run_requested(env, sub, info_of(env), (0, 0), report=False)
    request = stage_request(requested, info_of(env), 5)
    assert request.index == 1 and request.stage == "build" and request.requested_offset == 5
    assert request.run_id == requested.run_id and request.attempt == 1


def test_a_stage_request_of_a_rerun_names_its_start_and_carries_reused_outputs():
    """A rerun from a later stage is admitted there; its reused outputs ride along as before."""
    sub = Subscriber("s", pipeline=[build, check], events=["pull_request"]).spec
    env = envelope()
    requested = run_requested(env, sub, info_of(env), (0, 0), report=False).model_copy(
        update={"start_index": 1, "reused_outputs": {"build": 1}}
    )
    request = stage_request(requested, info_of(env), index=requested.start_index)
    assert request.stage == "check" and request.outputs == {"build": 1} and request.requested_offset is None
