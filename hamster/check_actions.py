"""What a click on one of Hamster's check runs asks for: pure decisions from GitHub's webhooks.

Theory of operation
-------------------
With a GitHub App, each run reports as one check run (named after the subscriber's status context, the run
id as its ``external_id``; see ``hamster.reporting``). GitHub sends the app that created a check run
(https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_run):

    check_run   rerequested        "Re-run" on the check run (also "Re-run failed checks", one per failed
                                   run)                        → rerun it; a failed run from its failed
                                                                 stage, any other from the start
    check_suite rerequested        "Re-run all checks"         → rerun Hamster's latest run of each check
                                                                 in the suite, from the start
    check_run   requested_action   a button the check run offers (``actions``)
                                   "cancel"                    → cancel the run

Who clicked (``sender.login``) goes into the run log: the cancellation's reason, the rerun's
``requested_by``. Check runs of other apps, and check runs without an ``external_id``, ask nothing of
Hamster. An "Approve" button arrives with approval stages (a later change); there is none yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CHECK_EVENTS = frozenset({"check_run", "check_suite"})


@dataclass(frozen=True)
class CheckButton:
    """A ``requested_action`` button (GitHub's limits: label 20, description 40, identifier 20 chars)."""

    label: str
    description: str
    identifier: str

    def as_github(self) -> dict[str, str]:
        return {"label": self.label, "description": self.description, "identifier": self.identifier}


CANCEL_BUTTON = CheckButton("Cancel", "Cancel this Hamster run", "cancel")


@dataclass(frozen=True)
class RerunRun:
    run_id: str
    from_failed_stage: bool
    by: str | None


@dataclass(frozen=True)
class RerunSuite:
    """Rerun Hamster's runs on ``head_sha``: which ones is read from GitHub's list of its check runs."""

    repo: str
    head_sha: str
    installation_id: int | None
    by: str | None


@dataclass(frozen=True)
class CancelFromGitHub:
    run_id: str
    by: str | None

    @property
    def reason(self) -> str:
        return f"cancelled by @{self.by} from GitHub" if self.by else "cancelled from GitHub"


Decision = RerunRun | RerunSuite | CancelFromGitHub


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _ours(app: Any, app_id: int | None) -> bool:
    return app_id is not None and isinstance(app, dict) and app.get("id") == app_id


def decide(event: str, payload: dict[str, Any], app_id: int | None) -> Decision | None:
    """What the webhook asks of Hamster (None: nothing). ``app_id``: Hamster's app (None: no app)."""
    if event not in CHECK_EVENTS:
        return None
    action = payload.get("action")
    sender = _get(payload, "sender", "login")
    by = sender if isinstance(sender, str) else None
    if event == "check_suite":
        suite = payload.get("check_suite")
        repo = _get(payload, "repository", "full_name")
        sha = _get(suite, "head_sha")
        installation = _get(payload, "installation", "id")
        if action != "rerequested" or not _ours(_get(suite, "app"), app_id):
            return None
        if not isinstance(repo, str) or not isinstance(sha, str):
            return None
        return RerunSuite(repo, sha, installation if isinstance(installation, int) else None, by)
    check = payload.get("check_run")
    run_id = _get(check, "external_id")
    if not _ours(_get(check, "app"), app_id) or not isinstance(run_id, str) or not run_id:
        return None
    if action == "rerequested":
        return RerunRun(run_id, _get(check, "conclusion") == "failure", by)
    if action == "requested_action" and _get(payload, "requested_action", "identifier") == "cancel":
        return CancelFromGitHub(run_id, by)
    return None


def suite_reruns(check_runs: list[dict[str, Any]], app_id: int | None) -> list[str]:
    """The runs to rerun for a suite: per check name, the run of Hamster's newest check run there."""
    newest: dict[str, tuple[int, str]] = {}
    for check in check_runs:
        run_id, name, check_id = check.get("external_id"), check.get("name"), check.get("id")
        if not _ours(check.get("app"), app_id) or not run_id or not isinstance(check_id, int):
            continue
        if name not in newest or newest[name][0] < check_id:
            newest[str(name)] = (check_id, str(run_id))
    return [run_id for _, run_id in sorted(newest.values())]
