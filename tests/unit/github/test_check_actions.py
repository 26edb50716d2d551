"""What clicks on Hamster's check runs ask for, decided from the recorded check_run/check_suite webhooks."""

from __future__ import annotations

import json

from hamster.github.app_manifest import EVENTS, create_url, form_page, manifest
from hamster.github.check_actions import (
    CANCEL_BUTTON,
    DESCRIPTION_MAX,
    IDENTIFIER_MAX,
    LABEL_MAX,
    MAX_BUTTONS,
    CancelFromGitHub,
    DecideFromGitHub,
    RerunRun,
    RerunSuite,
    buttons,
    decide,
    suite_reruns,
)
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


def clicked(identifier: str) -> dict:
    """The recorded requested_action sample, on one of Hamster's check runs, for the button ``identifier``."""
    payload = load("check_run", "requested_action.payload.json")
    payload["check_run"]["app"]["id"] = APP
    payload["check_run"]["external_id"] = "run-9"
    payload["requested_action"] = {"identifier": identifier}
    return payload


def test_approve_and_deny_buttons_decide_for_who_clicked_if_they_may():
    """Approve and Deny ask to decide the run's waiting approvals as the clicker, checked against the
    repository the webhook names through its installation; without a login nobody could be recorded."""
    repo, installation = "electron/electron", 690857  # the recorded sample's
    approve = decide("check_run", clicked("approve"), APP)
    assert approve == DecideFromGitHub("run-9", True, "codebytere", repo, installation)
    assert approve.verb == "approve"
    deny = decide("check_run", clicked("deny"), APP)
    assert deny == DecideFromGitHub("run-9", False, "codebytere", repo, installation)
    assert deny.verb == "deny"
    anonymous = clicked("approve")
    del anonymous["sender"]
    assert decide("check_run", anonymous, APP) is None


def test_buttons_fit_githubs_limits():
    """Cancel alone while nothing waits; Approve, Deny and Cancel (GitHub's maximum of three) while
    approvals wait, each within GitHub's lengths however long the stage names."""
    assert buttons([]) == (CANCEL_BUTTON,)
    offered = buttons(["go"])
    assert [b.identifier for b in offered] == ["approve", "deny", "cancel"]
    assert offered[0].description == "Approve go"
    long = buttons(["deploy-to-production-eu-west", "deploy-to-production-us-east"])
    for button in (*offered, *long):
        assert len(button.label) <= LABEL_MAX and len(button.identifier) <= IDENTIFIER_MAX
        assert len(button.description) <= DESCRIPTION_MAX
    assert len(long) <= MAX_BUTTONS and long[0].description.endswith("…")


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
