"""What a click on one of Hamster's check runs asks for: pure decisions from GitHub's webhooks.

Theory of operation
-------------------
With a GitHub App, each run reports as one check run (named after the subscriber's status context, the run
id as its ``external_id``; see ``hamster.github.reporting``). GitHub sends the app that created a check run
(https://docs.github.com/en/webhooks/webhook-events-and-payloads#check_run):

    check_run   rerequested        "Re-run" on the check run (also "Re-run failed checks", one per failed
                                   run)                        → rerun it; a failed run from its failed
                                                                 stage, any other from the start
    check_suite rerequested        "Re-run all checks"         → rerun Hamster's latest run of each check
                                                                 in the suite, from the start
    check_run   requested_action   a button the check run offers (``actions``, see ``buttons``)
                                   "approve" / "deny"          → decide the run's approval stages that
                                                                 wait, if the clicker may (write
                                                                 permission, as for ``/approve``)
                                   "cancel"                    → cancel the run

Who clicked (``sender.login``) goes into the run log: the cancellation's reason, the rerun's
``requested_by``, the approval's ``by``. Check runs of other apps, and check runs without an
``external_id``, ask nothing of Hamster.

GitHub redelivers a webhook with its delivery id unchanged (a retry, or "Redeliver" on the app's settings
page). A rerun's run id is derived from that delivery id (``hamster.runs.replay.rerun``), so a redelivered
Re-run lands on the run the first delivery started; Cancel and Approve are idempotent by themselves (an
ended run is not cancelled again, a decided stage is not decided again).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

CHECK_EVENTS = frozenset({"check_run", "check_suite"})


@dataclass(frozen=True)
class CheckButton:
    """A ``requested_action`` button (GitHub's limits: label 20, description 40, identifier 20 chars)."""

    label: str
    description: str
    identifier: str

    def as_github(self) -> dict[str, str]:
        return {"label": self.label, "description": self.description, "identifier": self.identifier}


# GitHub refuses a check run with more than three buttons, or a longer label, description or identifier
# (https://docs.github.com/en/rest/checks/runs#create-a-check-run, ``actions``).
MAX_BUTTONS = 3
LABEL_MAX, DESCRIPTION_MAX, IDENTIFIER_MAX = 20, 40, 20

CANCEL_BUTTON = CheckButton("Cancel", "Cancel this Hamster run", "cancel")
APPROVE, DENY = "approve", "deny"


def _fit(text: str) -> str:
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def buttons(waiting: list[str]) -> tuple[CheckButton, ...]:
    """The buttons of a run's check run while it goes: Approve and Deny while approval stages wait
    (``waiting``: their names; a click decides all of them, as ``/approve`` does), and Cancel."""
    if not waiting:
        return (CANCEL_BUTTON,)
    names = ", ".join(waiting)
    return (
        CheckButton("Approve", _fit(f"Approve {names}"), APPROVE),
        CheckButton("Deny", _fit(f"Deny {names}: the run fails"), DENY),
        CANCEL_BUTTON,
    )


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


@dataclass(frozen=True)
class DecideFromGitHub:
    """Approve (or deny) the approval stages of ``run_id`` that wait, if ``by`` has write permission on
    ``repo`` (asked of GitHub as ``installation_id``)."""

    run_id: str
    approve: bool
    by: str
    repo: str
    installation_id: int | None

    @property
    def verb(self) -> Literal["approve", "deny"]:
        return "approve" if self.approve else "deny"


Decision = RerunRun | RerunSuite | CancelFromGitHub | DecideFromGitHub


def _get(data: object, *path: str) -> object:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _ours(app: object, app_id: int | None) -> bool:
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
    if action != "requested_action":
        return None
    clicked = _get(payload, "requested_action", "identifier")
    if clicked == CANCEL_BUTTON.identifier:
        return CancelFromGitHub(run_id, by)
    repo = _get(payload, "repository", "full_name")
    if clicked in (APPROVE, DENY) and by is not None and isinstance(repo, str):
        installation = _get(payload, "installation", "id")
        return DecideFromGitHub(
            run_id, clicked == APPROVE, by, repo, installation if isinstance(installation, int) else None
        )
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
