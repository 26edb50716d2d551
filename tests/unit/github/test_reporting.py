"""What reporting tells GitHub for each run record: pure decisions, no GitHub and no broker."""

from __future__ import annotations

from hamster.github.check_actions import CANCEL_BUTTON, buttons
from hamster.github.reporting import (
    RemoveWorkspace,
    ReportOptions,
    SetStatus,
    StartCheck,
    UpdateCheck,
    carries_marker,
    comment_marker,
    expired,
    is_own_comment,
    report,
)
from hamster.intake.github_events import EventInfo, event_info
from hamster.pipelines.graph import StageSpec
from hamster.runs.events import (
    RunCancelled,
    RunFailed,
    RunRequested,
    RunSucceeded,
    StageApproved,
    StageDenied,
    StageFailed,
    StageStarted,
    StageSucceeded,
)
from tests.samples import load

SHA = "f" * 40
STATUS = ReportOptions(status=True, context="hamster/ci")
BOTH = ReportOptions(status=True, checks=True, context="hamster/ci")


def requested(seq: int = 1) -> RunRequested:
    event = EventInfo(name="pull_request", delivery_id="d", repo="acme/app", sha=SHA, pr_number=3)
    return RunRequested(
        event_id=f"e{seq}",
        run_id="r",
        seq=seq,
        subscriber="ci",
        subscriber_version="v",
        pipeline=("build", "test"),
        event=event,
    )


def started(seq: int, stage: str, index: int) -> StageStarted:
    return StageStarted(event_id=f"e{seq}", run_id="r", seq=seq, stage=stage, index=index, attempt=1)


def test_run_start_posts_pending_with_the_run_link():
    """RunRequested for a reporting subscriber: one pending status linking to the run."""
    state, actions = report(None, requested(), STATUS, "https://ci.example.com/")
    assert state is not None and state.seq == 1
    assert actions == [SetStatus("pending", "queued: build → test", "https://ci.example.com/runs/r")]


def test_success_and_failure_statuses():
    """RunSucceeded gives success; RunFailed names the failed stage; a stage that never ran gives error."""
    state, _ = report(None, requested(), STATUS)
    state, _ = report(state, started(2, "build", 0), STATUS)
    _, done = report(state, RunSucceeded(event_id="e3", run_id="r", seq=3), STATUS)
    assert done == [SetStatus("success", "all 2 stages passed", None), RemoveWorkspace("r")]
    failed = RunFailed(event_id="e3", run_id="r", seq=3, stage="build", reason="RuntimeError: x")
    _, out = report(state, failed, STATUS)
    assert out[0] == SetStatus("failure", "stage build failed: RuntimeError: x", None)
    worded = RunFailed(event_id="e3", run_id="r", seq=3, stage="build", reason="stage build failed: E: y")
    assert report(state, worded, STATUS)[1][0].description == "stage build failed: E: y"
    never = RunFailed(event_id="e3", run_id="r", seq=3, stage="test", reason="task test is not registered")
    assert report(state, never, STATUS)[1][0].state == "error"


def test_descriptions_fit_githubs_limit():
    """A long failure reason is cut to GitHub's 140 characters."""
    state, _ = report(None, requested(), STATUS)
    state, _ = report(state, started(2, "build", 0), STATUS)
    long = RunFailed(event_id="e3", run_id="r", seq=3, stage="build", reason="x" * 500)
    action = report(state, long, STATUS)[1][0]
    assert isinstance(action, SetStatus) and len(action.description) == 140


def test_records_seen_before_report_nothing():
    """Processing a record again (after a crash) makes no call, so no duplicate or out-of-order status."""
    state, _ = report(None, requested(), STATUS)
    state, _ = report(state, started(2, "build", 0), STATUS)
    again, actions = report(state, requested(), STATUS)
    assert again == state and actions == []
    assert report(state, started(2, "build", 0), STATUS)[1] == []


def test_checks_follow_the_stages():
    """With checks: a check run at the start, updated per stage, concluded at the end."""
    state, actions = report(None, requested(), BOTH)
    assert isinstance(actions[1], StartCheck) and actions[1].external_id == "r"
    state, actions = report(state, started(2, "build", 0), BOTH)
    assert actions == [
        UpdateCheck("in_progress", "running build", actions[0].summary, None, (CANCEL_BUTTON,))
    ]
    assert "| build | running |" in actions[0].summary
    failed = StageFailed(
        event_id="e3",
        run_id="r",
        seq=3,
        stage="build",
        index=0,
        attempt=1,
        error_type="E",
        message="m",
        duration_ms=1.0,
    )
    state, _ = report(state, failed, BOTH)
    _, actions = report(state, RunCancelled(event_id="e4", run_id="r", seq=4, reason="stop"), BOTH)
    assert [type(a) for a in actions] == [SetStatus, UpdateCheck, RemoveWorkspace]
    assert actions[1].conclusion == "cancelled"


def test_quiet_runs_report_nothing_but_clean_up():
    """A subscriber without report, or a replay, posts nothing; the workspace is still removed."""
    assert report(None, requested(), ReportOptions()) == (None, [])
    assert report(None, requested(), STATUS, replay=True) == (None, [])
    assert report(None, RunSucceeded(event_id="e3", run_id="r", seq=3), None) == (
        None,
        [RemoveWorkspace("r")],
    )


def test_own_comments_are_recognised():
    """A comment carrying Hamster's marker is its own; an ordinary comment is not."""
    payload = load("issue_comment", "created.payload.json")
    assert not is_own_comment(event_info("issue_comment", "d", payload))
    payload["comment"]["body"] = "Tests passed\n\n" + comment_marker("r", "comment")
    assert is_own_comment(event_info("issue_comment", "d", payload))
    assert carries_marker(comment_marker("r", "s")) and not carries_marker("<!-- other -->")


def test_an_ended_runs_state_expires_an_hour_after_it_ended():
    """The state of a run that ended says when; it can be forgotten an hour later, not before, and a run
    in flight never."""
    state, _ = report(None, requested(), STATUS)
    assert state is not None and not expired(state, now=10**10, keep_s=3600)
    done = RunSucceeded(event_id="e2", run_id="r", seq=2)
    ended, _ = report(state, done, STATUS)
    assert ended is not None and ended.ended_at == done.occurred_at.timestamp()
    assert not expired(ended, ended.ended_at + 3599, keep_s=3600)
    assert expired(ended, ended.ended_at + 3600, keep_s=3600)


GATED = {
    "build": StageSpec(),
    "go": StageSpec(needs=("build",), approval=True),
    "ship": StageSpec(needs=("go",)),
}


def gated(graph: dict[str, StageSpec] = GATED, reused: dict | None = None) -> RunRequested:
    """A run whose ``go`` stage waits for a person once ``build`` succeeded."""
    return requested().model_copy(
        update={"pipeline": tuple(graph), "graph": graph, "reused_outputs": reused or {}}
    )


def test_the_approve_button_shows_while_the_approval_waits_and_goes_once_decided():
    """Approve and Deny join Cancel when go's needs succeed, and go again when somebody approves."""
    state, actions = report(None, gated(), BOTH)
    assert isinstance(actions[1], StartCheck) and actions[1].actions == (CANCEL_BUTTON,)
    state, actions = report(state, started(2, "build", 0), BOTH)
    assert actions[0].actions == (CANCEL_BUTTON,)
    built = StageSucceeded(
        event_id="e3", run_id="r", seq=3, stage="build", index=0, attempt=1, output=None, duration_ms=1.0
    )
    state, actions = report(state, built, BOTH)
    [update] = actions
    assert isinstance(update, UpdateCheck) and update.actions == buttons(["go"])
    assert [b.identifier for b in update.actions] == ["approve", "deny", "cancel"]
    assert "| go | waiting for approval |" in update.summary
    approved = StageApproved(
        event_id="e4", run_id="r", seq=4, stage="go", index=1, by="octocat", via="check_run"
    )
    _, [update] = report(state, approved, BOTH)
    assert update.title == "go approved by octocat" and update.actions == (CANCEL_BUTTON,)
    assert "| go | succeeded |" in update.summary
    denied = StageDenied(event_id="e4", run_id="r", seq=4, stage="go", index=1, reason="nobody approved go")
    _, [update] = report(state, denied, BOTH)
    assert update.title == "go failed" and update.actions == (CANCEL_BUTTON,)


def test_an_approval_that_needs_nothing_waits_from_the_start():
    """An approval stage with no needs (or whose needs a rerun reuses) shows its buttons on the new
    check run already."""
    first = {"go": StageSpec(approval=True), "ship": StageSpec(needs=("go",))}
    _, actions = report(None, gated(first), BOTH)
    assert actions[1].actions == buttons(["go"])
    rerun = gated(reused={"build": {"built": SHA}})
    _, actions = report(None, rerun.model_copy(update={"start_index": 1}), BOTH)
    assert actions[1].actions == buttons(["go"]) and "| build | succeeded |" in actions[1].summary
