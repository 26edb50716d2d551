"""Pipelines as graphs: expansion of lines, graphs and matrices, and how the state machine runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hamster import Subscriber, approval, task
from hamster.errors import ConfigurationError, InvalidTransition
from hamster.github.reporting import carries_marker
from hamster.intake.github_events import EventInfo
from hamster.pipelines.graph import StageSpec, expand
from hamster.runs.approvals import refusal, waiting, waiting_in
from hamster.runs.events import (
    RunRequested,
    StageApproved,
    StageDenied,
    StageFailed,
    StagesSkipped,
    StageStarted,
    StageSucceeded,
)
from hamster.runs.lifecycle import evolve, fold
from hamster.runs.next_step import (
    Deny,
    FinishFailed,
    FinishSucceeded,
    Skip,
    Start,
    claimable,
    overdue,
    settle,
)

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RUN = "run-1"


@task
def lint(ctx):
    return None


@task
def unit(ctx):
    return None


@task
def deploy(ctx):
    return None


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Log:
    """Builds a run's records in order, by stage name."""

    def __init__(self, pipeline, **fields):
        self.graph = expand("sub", pipeline)
        self.names = list(self.graph)
        self.records = [
            RunRequested(
                event_id="e1",
                run_id=RUN,
                seq=1,
                occurred_at=at(0),
                subscriber="sub",
                subscriber_version="v",
                pipeline=tuple(self.graph),
                graph=self.graph,
                event=EventInfo(name="push", delivery_id="d"),
                **fields,
            )
        ]

    @property
    def state(self):
        return fold(self.records)

    def add(self, make, stage, **fields):
        seq = len(self.records) + 1
        fields.setdefault("occurred_at", at(seq))
        self.records.append(
            make(
                event_id=f"e{seq}", run_id=RUN, seq=seq, stage=stage, index=self.names.index(stage), **fields
            )
        )
        return self.state

    def start(self, stage, attempt=1):
        return self.add(StageStarted, stage, attempt=attempt, lease_s=30.0)

    def succeed(self, stage, output=None):
        return self.add(StageSucceeded, stage, attempt=1, output=output, duration_ms=1.0)

    def fail(self, stage):
        return self.add(StageFailed, stage, attempt=1, error_type="E", message="m", duration_ms=1.0)

    def skip(self, decision: Skip):
        seq = len(self.records) + 1
        self.records.append(
            StagesSkipped(
                event_id=f"e{seq}",
                run_id=RUN,
                seq=seq,
                stages=tuple(self.names[i] for i in decision.indexes),
                indexes=decision.indexes,
                because=decision.because,
                reason=decision.reason,
            )
        )
        return self.state


DIAMOND = {lint: [], unit: [], deploy: [lint, unit]}


def test_a_list_is_a_line_and_a_dict_a_graph():
    """A list makes each stage need the one before; a dict says what each needs."""
    assert expand("s", [lint, unit]) == {"lint": StageSpec(), "unit": StageSpec(needs=("lint",))}
    graph = expand("s", DIAMOND)
    assert graph["deploy"].needs == ("lint", "unit") and graph["lint"].needs == ()


def test_a_line_keeps_its_subscriber_version_and_a_graph_is_on_the_spec():
    """A line's spec has no graph (so its version is what it was); a graph's spec carries it."""
    line = Subscriber("s", events=["push"], pipeline=[lint, unit]).spec
    assert line.graph == {} and line.pipeline == ("lint", "unit")
    graph = Subscriber("s", events=["push"], pipeline=DIAMOND).spec
    assert set(graph.graph) == {"lint", "unit", "deploy"} and graph.pipeline[-1] == "deploy"


@pytest.mark.parametrize(
    ("pipeline", "says"),
    [
        ({lint: [deploy], deploy: [lint]}, "cycle"),
        ({lint: [], deploy: ["nope"]}, "unknown stage"),
        ({lint: [], deploy: [unit]}, "unknown stage"),
    ],
)
def test_a_cycle_or_an_unknown_need_is_refused(pipeline, says):
    """A cycle or a need naming no stage of the pipeline is a configuration error, in one line."""
    with pytest.raises(ConfigurationError, match=says) as caught:
        Subscriber("s", events=["push"], pipeline=pipeline)
    assert "\n" not in str(caught.value)


def test_a_matrix_expands_into_instances_named_by_their_values():
    """2 x 2 less one exclusion is three instances; a stage needing the matrix needs every instance."""
    graph = expand(
        "s",
        {
            lint: [],
            unit.matrix(
                python=["3.11", "3.12"],
                db=["sqlite", "postgres"],
                exclude=[{"python": "3.11", "db": "postgres"}],
            ): [lint],
            deploy: [unit],
        },
    )
    instances = [
        "unit[python=3.11,db=sqlite]",
        "unit[python=3.12,db=sqlite]",
        "unit[python=3.12,db=postgres]",
    ]
    assert list(graph) == ["lint", *instances, "deploy"]
    assert graph["unit[python=3.12,db=postgres]"] == StageSpec(
        needs=("lint",), task="unit", params={"python": "3.12", "db": "postgres"}, matrix="unit"
    )
    assert graph["deploy"].needs == tuple(instances)


def test_include_extends_matching_instances_or_adds_its_own():
    """An include agreeing with instances adds its extra keys to them; one agreeing with none is added."""
    m = unit.matrix(python=["3.11", "3.12"], include=[{"python": "3.12", "extra": "x"}, {"python": "3.13"}])
    assert m.combinations() == [{"python": "3.11"}, {"python": "3.12", "extra": "x"}, {"python": "3.13"}]


def test_stages_whose_needs_succeeded_are_claimable_together():
    """The diamond: lint and unit at once; deploy only after both, seeing both outputs."""
    log = Log(DIAMOND)
    assert claimable(log.state, at(1)) == [Start(0, 1), Start(1, 1)]
    log.start("lint")
    assert claimable(log.start("unit"), at(3)) == []
    log.succeed("lint", {"l": 1})
    with pytest.raises(InvalidTransition, match="waits for"):
        evolve(log.state, StageStarted(event_id="x", run_id=RUN, seq=5, stage="deploy", index=2, attempt=1))
    state = log.succeed("unit", {"u": 2})
    assert claimable(state, at(6)) == [Start(2, 1)]
    assert state.outputs_for(2) == {"lint": {"l": 1}, "unit": {"u": 2}}
    assert state.outputs_for(1) == {}
    log.start("deploy")
    assert settle(log.succeed("deploy"), at(9)) == FinishSucceeded()


def test_a_failure_skips_only_its_dependents_and_the_run_fails_once_all_are_done():
    """lint fails: deploy is skipped, unit goes on; the run fails when unit is done."""
    log = Log(DIAMOND)
    log.start("lint")
    log.start("unit")
    decision = settle(log.fail("lint"), at(4))
    assert decision == Skip((2,), "lint", "stage lint failed")
    state = log.skip(decision)
    assert [s.status for s in state.stages] == ["failed", "running", "skipped"]
    assert settle(state, at(6)) is None  # unit still runs
    finished = settle(log.succeed("unit"), at(7))
    assert isinstance(finished, FinishFailed) and finished.stage == "lint"


def test_fail_fast_skips_the_siblings_of_a_failed_instance_even_running_ones():
    """With fail_fast a failed instance skips its siblings (a running one is stopped: its records refused)."""
    log = Log({unit.matrix(python=["3.11", "3.12", "3.13"], fail_fast=True): [], deploy: [unit]})
    first, second = log.names[:2]
    log.start(first)
    log.start(second)
    decision = settle(log.fail(first), at(4))
    assert decision == Skip((1, 2, 3), first, f"fail_fast: stage {first} failed")
    state = log.skip(decision)
    assert [s.status for s in state.stages] == ["failed", "skipped", "skipped", "skipped"]
    with pytest.raises(InvalidTransition):
        log.succeed(second)
    without = Log({unit.matrix(python=["3.11", "3.12"]): []})
    without.start(without.names[0])
    assert settle(without.fail(without.names[0]), at(3)) is None  # its sibling goes on


def test_an_approval_stage_is_claimed_by_nobody_and_ends_by_a_person():
    """Approval stages are never claimable; approved once its needs succeeded, it lets deploy start."""
    log = Log({lint: [], approval("ship", timeout_s=60): [lint], deploy: ["ship"]})
    with pytest.raises(InvalidTransition, match="still waits"):
        log.add(StageApproved, "ship", by="octocat", via="comment")
    log.records.pop()
    log.start("lint")
    state = log.succeed("lint")
    assert claimable(state, at(4)) == []
    assert state.stages[1].due_at == at(3) + timedelta(seconds=60)
    assert (
        overdue(
            state,
            at(1000),
            touched_at=at(3),
            admitted=True,
            governed=False,
            reoffer_after_s=1,
            stuck_after_s=1,
        )
        is None
    )  # waiting for a person is no lack of progress
    state = log.add(StageApproved, "ship", by="octocat", via="comment")
    assert state.stages[1].output["approved_by"] == "octocat"
    assert claimable(state, at(5)) == [Start(2, 1)]


def test_an_approval_fails_when_denied_or_when_nobody_decides_in_time():
    """``/deny`` fails the stage and so the run; after its timeout the run owes a denial."""
    log = Log({approval("ship", timeout_s=60): [], deploy: ["ship"]})
    assert settle(log.state, at(59)) is None
    assert settle(log.state, at(60)) == Deny(0, "nobody approved ship within 60 s")
    state = log.add(StageDenied, "ship", by="octocat", via="comment", reason="denied by octocat")
    assert state.stages[0].status == "failed" and state.stages[0].error["by"] == "octocat"
    assert settle(state, at(61)) == Skip((1,), "ship", "stage ship failed")


def test_the_approvals_that_wait_are_those_whose_needs_succeeded():
    """A button or comment decides the approval stages that wait: none before their needs succeeded,
    none once decided or once the run ended."""
    log = Log({lint: [], approval("ship"): [lint], approval("also"): [], deploy: ["ship", "also"]})
    assert waiting_in(log.state) == ["also"]
    log.start("lint")
    assert waiting_in(log.succeed("lint")) == ["ship", "also"]
    assert waiting([log.state], None, None) == [(RUN, "ship"), (RUN, "also")]
    assert waiting([log.state], "acme/app", None) == []  # another repository's runs
    assert waiting_in(log.add(StageApproved, "ship", by="octocat", via="check_run")) == ["also"]
    assert waiting_in(None) == []
    reply = refusal("mallory", "acme/app", "approve", "read")
    assert reply.startswith("@mallory: only people with write permission on acme/app may approve (yours:")
    assert carries_marker(reply)


def test_a_record_without_a_graph_folds_as_a_line():
    """Runs requested before graphs existed: each stage needs the one before."""
    old = Log([lint, unit, deploy])
    old.records[0] = old.records[0].model_copy(update={"graph": {}})
    state = old.state
    assert [s.needs for s in state.stages] == [(), ("lint",), ("unit",)]
    assert claimable(state, at(1)) == [Start(0, 1)]


def test_each_matrix_instance_reports_a_status_of_its_own():
    """An instance's start, success and skip become statuses in its own context; other stages add none."""
    from hamster.github.reporting import ReportOptions, SetStatus, report

    log = Log({lint: [], unit.matrix(python=["3.11", "3.12"], fail_fast=True): [lint]})
    requested = log.records[0].model_copy(
        update={"event": EventInfo(name="push", delivery_id="d", repo="a/b", sha="f" * 40)}
    )
    options = ReportOptions(status=True, context="hamster/ci")
    state, _ = report(None, requested, options)
    log.start("lint")
    log.succeed("lint")
    log.start("unit[python=3.11]")
    log.fail("unit[python=3.11]")
    log.skip(settle(log.state, at(9)))
    statuses = []
    for record in log.records[1:]:
        state, actions = report(state, record, None)
        statuses += [(a.context, a.state) for a in actions if isinstance(a, SetStatus)]
    assert statuses == [
        ("hamster/ci/unit[python=3.11]", "pending"),
        ("hamster/ci/unit[python=3.11]", "failure"),
        ("hamster/ci/unit[python=3.12]", "error"),
    ]
    assert state.stages == {
        "lint": "succeeded",
        "unit[python=3.11]": "failed",
        "unit[python=3.12]": "skipped",
    }


def test_a_matrix_instance_name_must_fit_the_projection():
    """Instance names longer than the projection's 100 characters are refused at start."""
    with pytest.raises(ConfigurationError, match="over 100 characters"):
        expand("s", [unit.matrix(python=["x" * 120])])


def test_a_requested_graph_whose_needs_do_not_come_first_is_refused():
    """A RunRequested naming a need that is not an earlier stage does not fold (no stage could wait on it)."""
    log = Log(DIAMOND)
    bad = dict(log.graph, lint=StageSpec(needs=("deploy",)))
    with pytest.raises(InvalidTransition, match="does not come before it"):
        fold([log.records[0].model_copy(update={"graph": bad})])
