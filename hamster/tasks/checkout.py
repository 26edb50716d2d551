"""The ``checkout`` task: the event's commit, cloned into the run's workspace.

Configured through the subscriber's params: ``params={"checkout": {"merge": True, "transport": "ssh"}}``.
Its output gives later stages ``workspace`` (the path) and ``sha`` (what is checked out).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hamster.errors import ConfigurationError, TaskError
from hamster.pipelines.context import TaskContext
from hamster.pipelines.task import task
from hamster.settings import Settings
from hamster.tasks.git import CheckoutPlan, child_env, plan_checkout
from hamster.tasks.workspace import redact, workspace_path

GIT_TIMEOUT_S = 600.0
IDENTITY = ["-c", "user.name=Hamster", "-c", "user.email=hamster@localhost"]


class CheckoutFailed(TaskError):
    """git could not fetch or check out the commit."""


def _settings(ctx: TaskContext) -> Settings:
    if ctx.github is None:
        raise ConfigurationError("checkout: this worker gives tasks no GitHub settings")
    return ctx.github.settings


def _git(plan: CheckoutPlan, secrets: list[str], *args: str, cwd: Path) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=child_env(plan.env),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CheckoutFailed(f"git {args[0]} ran past {GIT_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise CheckoutFailed(
            redact(f"git {args[0]} failed ({done.returncode}): {done.stderr.strip()}", secrets)
        )
    return done.stdout.strip()


def run_checkout(ctx: TaskContext) -> dict[str, Any]:
    settings = _settings(ctx)
    options = ctx.params.get("checkout") or {}
    assert ctx.github is not None
    # With a GitHub App: the installation's token, fetched (or renewed) now, so it outlives the clone.
    token = ctx.github.git_token() if settings.github_app else None
    plan = plan_checkout(
        settings,
        ctx.event,
        merge=bool(options.get("merge")),
        transport=options.get("transport"),
        token=token,
    )
    personal = settings.github_api_token
    secrets = [t for t in (token, personal.get_secret_value() if personal else None) if t]
    workspace = workspace_path(settings.home, ctx.run_id)
    workspace.mkdir(parents=True, exist_ok=True)
    if not (workspace / ".git").exists():
        _git(plan, secrets, "init", "-q", str(workspace), cwd=workspace)
        _git(plan, secrets, "remote", "add", "--end-of-options", "origin", plan.url, cwd=workspace)
    _git(
        plan,
        secrets,
        "fetch",
        "-q",
        "--no-tags",
        "--end-of-options",
        "origin",
        f"+{plan.refspec}:refs/hamster/head",
        cwd=workspace,
    )
    head = _git(
        plan,
        secrets,
        "rev-parse",
        "--verify",
        "--end-of-options",
        "refs/hamster/head^{commit}",
        cwd=workspace,
    )
    if head != plan.sha:
        # The ref moved on since the webhook (a newer push): the event's own sha is what this run tests.
        _git(plan, secrets, "fetch", "-q", "--no-tags", "--end-of-options", "origin", plan.sha, cwd=workspace)
    _git(plan, secrets, "switch", "-q", "--force", "--detach", "--end-of-options", plan.sha, cwd=workspace)
    merged = None
    if plan.base_ref is not None:
        _git(
            plan,
            secrets,
            "fetch",
            "-q",
            "--no-tags",
            "--end-of-options",
            "origin",
            f"+{plan.base_ref}:refs/hamster/base",
            cwd=workspace,
        )
        _git(
            plan,
            secrets,
            "switch",
            "-q",
            "--force",
            "--detach",
            "--end-of-options",
            "refs/hamster/base",
            cwd=workspace,
        )
        _git(
            plan, secrets, *IDENTITY, "merge", "-q", "--no-edit", "--end-of-options", plan.sha, cwd=workspace
        )
        merged = _git(plan, secrets, "rev-parse", "--verify", "--end-of-options", "HEAD", cwd=workspace)
    checked_out = _git(plan, secrets, "rev-parse", "--verify", "--end-of-options", "HEAD", cwd=workspace)
    if merged is None and checked_out != plan.sha:
        raise CheckoutFailed(f"checked out {checked_out}, expected {plan.sha}")
    return {"workspace": str(workspace), "sha": plan.sha, "head": checked_out, "merged": merged is not None}


checkout = task(name="checkout")(run_checkout)
