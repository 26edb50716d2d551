"""What clicks on Hamster's check runs ask for, decided from the recorded check_run/check_suite webhooks."""

from __future__ import annotations

import json

from hamster.check_actions import (
    CANCEL_BUTTON,
    CancelFromGitHub,
    RerunRun,
    RerunSuite,
    decide,
    suite_reruns,
)
from hamster.github_app_manifest import EVENTS, create_url, form_page, manifest
from tests.samples import load

APP = 29310  # the app of the recorded check_run and check_suite samples


def check_run(action: str, conclusion: str | None = "failure", external_id: str = "run-7") -> dict:
    """The recorded check_run sample, with this action, conclusion and external id."""
    payload = load("check_run", "completed.payload.json")
    payload["action"] = action
    payload["check_run"].update(conclusion=conclusion, external_id=external_id)
    return payload


def test_rerequested_failed_check_reruns_from_the_failed_stage():
    """Re-run on a failed check run reruns its run from the failed stage, naming who clicked."""
    assert decide("check_run", check_run("rerequested"), APP) == RerunRun("run-7", True, "Codertocat")
    assert decide("check_run", check_run("rerequested", "success"), APP) == RerunRun(
        "run-7", False, "Codertocat"
    )


def test_requested_action_cancel_cancels_and_says_who():
    """The Cancel button (requested_action "cancel") cancels the run; the reason names the clicker."""
    payload = load("check_run", "requested_action.payload.json")  # another app's: ignored as it is
    assert decide("check_run", payload, APP) is None
    payload["check_run"]["app"]["id"] = APP
    payload["check_run"]["external_id"] = "run-8"
    assert decide("check_run", payload, APP) is None  # its identifier is not one of Hamster's buttons
    payload["requested_action"] = {"identifier": CANCEL_BUTTON.identifier}
    decision = decide("check_run", payload, APP)
    assert decision == CancelFromGitHub("run-8", "codebytere")
    assert decision.reason == "cancelled by @codebytere from GitHub"


def test_other_apps_checks_and_checks_without_a_run_ask_nothing():
    """Another app's check run, one without an external id, or no app configured: nothing to do."""
    assert decide("check_run", check_run("rerequested"), APP + 1) is None
    assert decide("check_run", check_run("rerequested", external_id=""), APP) is None
    assert decide("check_run", check_run("rerequested"), None) is None
    assert decide("check_run", check_run("completed"), APP) is None
    assert decide("pull_request", load("pull_request", "opened.payload.json"), APP) is None


def test_suite_rerequested_reruns_the_latest_run_per_check():
    """Re-run all checks: Hamster's newest check run per name is rerun, not the older attempts."""
    payload = load("check_suite", "requested.payload.json")
    assert decide("check_suite", payload, APP) is None  # "requested" is GitHub asking, not a person
    payload["action"] = "rerequested"
    decision = decide("check_suite", payload, APP)
    assert decision == RerunSuite(
        "Codertocat/Hello-World", payload["check_suite"]["head_sha"], 957387, "Codertocat"
    )
    ours, theirs = {"id": APP}, {"id": 1}
    checks = [
        {"id": 5, "name": "hamster/ci", "external_id": "run-1", "app": ours},
        {"id": 9, "name": "hamster/ci", "external_id": "run-1-2", "app": ours},
        {"id": 7, "name": "hamster/lint", "external_id": "run-3", "app": ours},
        {"id": 8, "name": "other", "external_id": "x", "app": theirs},
    ]
    assert suite_reruns(checks, APP) == ["run-3", "run-1-2"]


def test_manifest_asks_for_what_hamster_uses():
    """The manifest points webhooks at Hamster and asks for checks, statuses, contents, PRs and issues."""
    document = manifest("https://ci.example.com/")
    assert document["hook_attributes"]["url"] == "https://ci.example.com/webhooks/github"
    assert document["default_permissions"]["checks"] == "write"
    assert {"check_run", "check_suite", "pull_request", "push"} <= set(document["default_events"])
    assert document["default_events"] == EVENTS
    assert create_url() == "https://github.com/settings/apps/new"
    assert (
        create_url("ghe.example.com", "acme")
        == "https://ghe.example.com/organizations/acme/settings/apps/new"
    )
    page = form_page(document, create_url())
    assert 'name="manifest"' in page and json.dumps(document).replace('"', "&quot;") in page
