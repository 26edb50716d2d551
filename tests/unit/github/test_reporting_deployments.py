"""Reporting a deployment's run: deployment statuses instead of commit statuses, marked as Hamster's own."""

from __future__ import annotations

from hamster.github.reporting import (
    DESCRIPTION_MAX,
    RemoveWorkspace,
    ReportOptions,
    SetDeploymentStatus,
    SetStatus,
    StartCheck,
    UpdateCheck,
    deployment_description,
    environment_url_of,
    is_own_deployment_status,
    report,
)
from hamster.intake.github_events import event_info
from hamster.runs.events import (
    RunCancelled,
    RunFailed,
    RunRequested,
    RunSucceeded,
    StageStarted,
    StageSucceeded,
)
from tests.samples import load

RUN = "0a1b2c3d-0000-5000-8000-000000000000"
STATUS = ReportOptions(status=True, context="hamster/deploy")
URL = f"https://ci.example.com/runs/{RUN}"


def requested(event: str = "deployment") -> RunRequested:
    info = event_info(event, "d", load(event, "payload.json")).model_copy(update={"payload": {}})
    return RunRequested(
        event_id="e1",
        run_id=RUN,
        seq=1,
        subscriber="deploy",
        subscriber_version="v",
        pipeline=("build", "ship"),
        event=info,
    )


def started(seq: int, stage: str) -> StageStarted:
    return StageStarted(event_id=f"e{seq}", run_id=RUN, seq=seq, stage=stage, index=seq - 2, attempt=1)


def test_deployment_run_reports_to_its_deployment():
    """queued at the request, in_progress per stage, success at the end; no commit status at all."""
    state, first = report(None, requested(), STATUS, "https://ci.example.com")
    assert state is not None and state.deployment_id == 145988746
    assert first == [SetDeploymentStatus("queued", f"queued: build → ship (hamster run {RUN[:8]})", URL)]
    state, second = report(state, started(2, "build"), STATUS, "https://ci.example.com")
    assert second == [SetDeploymentStatus("in_progress", f"running build (hamster run {RUN[:8]})", URL)]
    _, last = report(state, RunSucceeded(event_id="e3", run_id=RUN, seq=3), STATUS)
    assert last == [
        SetDeploymentStatus("success", f"all 2 stages passed (hamster run {RUN[:8]})", None),
        RemoveWorkspace(RUN),
    ]


def succeeded(seq: int, stage: str, output: object) -> StageSucceeded:
    return StageSucceeded(
        event_id=f"e{seq}", run_id=RUN, seq=seq, stage=stage, index=0, attempt=1, output=output, duration_ms=1
    )


def test_environment_url_a_stage_returns_goes_on_in_progress_and_success():
    """The latest environment_url a stage returned rides on later in_progress statuses and on success,
    each status with the run's page as its log URL."""
    state, _ = report(None, requested(), STATUS, "https://ci.example.com")
    state, _ = report(state, started(2, "build"), STATUS, "https://ci.example.com")
    state, none = report(
        state, succeeded(3, "build", {"environment_url": "https://pr-7.example.com"}), STATUS
    )
    assert none == []  # a stage's end is no deployment status
    state, running = report(state, started(4, "ship"), STATUS, "https://ci.example.com")
    mark = f"(hamster run {RUN[:8]})"
    assert running == [
        SetDeploymentStatus("in_progress", f"running ship {mark}", URL, "https://pr-7.example.com")
    ]
    state, _ = report(state, succeeded(5, "ship", {"environment_url": "https://site.example.com"}), STATUS)
    _, done = report(state, RunSucceeded(event_id="e6", run_id=RUN, seq=6), STATUS, "https://ci.example.com")
    assert done[0] == SetDeploymentStatus(
        "success", f"all 2 stages passed {mark}", URL, "https://site.example.com"
    )


def test_failure_names_no_environment_url():
    """A failed deployment's status has its log URL but no environment URL, even when a stage returned one."""
    state, _ = report(None, requested(), STATUS, "https://ci.example.com")
    state, _ = report(state, succeeded(2, "build", {"environment_url": "https://pr-7.example.com"}), STATUS)
    state, _ = report(state, started(3, "ship"), STATUS)
    failed = RunFailed(event_id="e4", run_id=RUN, seq=4, stage="ship", reason="RuntimeError: no")
    [status, _] = report(state, failed, STATUS, "https://ci.example.com")[1]
    assert isinstance(status, SetDeploymentStatus) and status.state == "failure"
    assert (status.log_url, status.environment_url) == (URL, None)


def test_environment_url_must_be_an_http_url_in_an_output_dict():
    """Only an http(s) URL under environment_url in a dict output counts; anything else is ignored."""
    assert environment_url_of({"environment_url": "https://x.example.com"}) == "https://x.example.com"
    assert environment_url_of({"environment_url": "http://10.0.0.7:8080/"}) == "http://10.0.0.7:8080/"
    for output in ({"environment_url": "x.example.com"}, {"environment_url": 7}, {"url": "https://x"}, None):
        assert environment_url_of(output) is None
    assert environment_url_of(["environment_url"]) is None


def test_only_a_deployments_run_keeps_an_environment_url():
    """A run reporting commit statuses ignores environment_url: only deployment statuses carry one."""
    state, _ = report(None, requested("deployment_status"), STATUS)
    state, _ = report(state, succeeded(2, "build", {"environment_url": "https://x.example.com"}), STATUS)
    assert state is not None and state.environment_url is None


def test_failed_and_cancelled_deployment_runs():
    """A failed stage gives failure naming it; a cancelled run gives error saying why."""
    state, _ = report(None, requested(), STATUS)
    state, _ = report(state, started(2, "build"), STATUS)
    failed = RunFailed(event_id="e3", run_id=RUN, seq=3, stage="build", reason="RuntimeError: no")
    [status, _] = report(state, failed, STATUS)[1]
    assert isinstance(status, SetDeploymentStatus) and status.state == "failure"
    assert status.description.startswith("stage build failed: RuntimeError: no")
    cancelled = RunCancelled(event_id="e3", run_id=RUN, seq=3, reason="superseded by run x")
    [status, _] = report(state, cancelled, STATUS)[1]
    assert isinstance(status, SetDeploymentStatus) and status.state == "error"


def test_checks_still_go_to_the_commit():
    """A deployment's run with checks=True still gets its check run on the deployed sha."""
    both = ReportOptions(status=True, checks=True, context="hamster/deploy")
    _, actions = report(None, requested(), both)
    assert [type(a) for a in actions] == [SetDeploymentStatus, StartCheck]
    state, _ = report(None, requested(), both)
    _, stage = report(state, started(2, "build"), both)
    assert [type(a) for a in stage] == [SetDeploymentStatus, UpdateCheck]


def test_deployment_status_runs_report_to_the_commit():
    """A run started by a deployment_status event sets commit statuses: it did not start the deployment."""
    state, actions = report(None, requested("deployment_status"), STATUS)
    assert state is not None and state.deployment_id is None
    assert [type(a) for a in actions] == [SetStatus]


def test_description_keeps_the_mark_within_githubs_limit():
    """A long description is cut before the mark, so it still fits 140 characters and is recognised."""
    text = deployment_description("x" * 500, RUN)
    assert len(text) == DESCRIPTION_MAX and text.endswith(f"(hamster run {RUN[:8]})")


def test_own_deployment_statuses_are_recognised():
    """A deployment_status webhook about a status Hamster wrote is its own; a person's or a tool's is not."""
    payload = load("deployment_status", "payload.json")
    assert not is_own_deployment_status(event_info("deployment_status", "d", payload))
    # Derived: the description of a status Hamster posted.
    payload["deployment_status"]["description"] = deployment_description("all 2 stages passed", RUN)
    assert is_own_deployment_status(event_info("deployment_status", "d", payload))
    payload["deployment_status"]["description"] = "deployed by hamster run 0a1b2c3d, says the ops team"
    assert not is_own_deployment_status(event_info("deployment_status", "d", payload))
    comment = load("issue_comment", "created.payload.json")
    assert not is_own_deployment_status(event_info("issue_comment", "d", comment))
