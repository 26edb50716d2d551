"""How ``checkout`` fetches a commit: the plan is pure (URL, refs, environment), ``git`` runs it.

Credentials never go into a URL, an argument or ``.git/config``: over https the token travels as an
``http.<base>.extraHeader`` set through ``GIT_CONFIG_*`` environment variables (git ≥ 2.31); over ssh the
key is named in ``GIT_SSH_COMMAND``, and host keys are always checked (``StrictHostKeyChecking=yes``).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from hamster.errors import ConfigurationError, TaskError
from hamster.execution.task_env import for_git
from hamster.intake.github_events import EventInfo
from hamster.settings import Settings

Transport = Literal["ssh", "https"]
TRANSPORTS: tuple[Transport, ...] = get_args(Transport)
DEFAULT_KEY = Path("github.key")

# What a webhook may name, checked before any of it reaches git: a full object name (SHA-1 or SHA-256),
# GitHub's owner/name charset (owners: letters, digits, '-'; names: letters, digits, '.', '-', '_'), and
# refs as git check-ref-format allows them, without a leading '-' (never an option) or anything git reads
# as syntax.
SHA = re.compile(r"^[0-9a-f]{40,64}$")
REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")
REF = re.compile(r"^refs/(?!.*\.\.)(?!.*//)(?!.*@\{)(?!.*\.lock(?:/|$))[A-Za-z0-9._/+-]{1,250}(?<![./])$")
BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/+-]{1,250}(?<![./])$")


class UnsafeCheckout(TaskError):
    """The event names a commit, repository or ref that is not safe to hand to git."""


def check_names(repo: str, sha: str, ref: str | None = None, branch: str | None = None) -> None:
    """Raise ``UnsafeCheckout`` unless every name git will see has the shape GitHub gives it."""
    if not SHA.fullmatch(sha):
        raise UnsafeCheckout(f"checkout refused: sha {sha[:80]!r} is not 40 to 64 lower-case hex digits")
    if not REPO.fullmatch(repo):
        raise UnsafeCheckout(f"checkout refused: repository {repo[:120]!r} is not owner/name")
    if ref is not None and ref.startswith("refs/") and not REF.fullmatch(ref):
        raise UnsafeCheckout(f"checkout refused: ref {ref[:120]!r} is not a valid git ref")
    if branch is not None and not BRANCH.fullmatch(branch):
        raise UnsafeCheckout(f"checkout refused: branch {branch[:120]!r} is not a valid branch name")


@dataclass(frozen=True)
class CheckoutPlan:
    url: str
    refspec: str  # what to fetch: the PR head, the pushed ref, or the sha itself
    sha: str
    base_ref: str | None  # fetched and merged under the head when merging onto the base branch
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold the token: never logged


def ssh_key(settings: Settings, cwd: Path | None = None) -> Path | None:
    """``HAMSTER_GITHUB_KEY``, else ``github.key`` in the working directory if present, else None."""
    if settings.github_key is not None:
        return settings.github_key
    default = (cwd or Path.cwd()) / DEFAULT_KEY
    return default if default.exists() else None


def transport_for(
    settings: Settings, key: Path | None, asked: str | None = None, token: str | None = None
) -> Transport:
    if asked in TRANSPORTS:
        return asked
    if asked is not None:
        raise ConfigurationError(f"checkout transport must be 'ssh' or 'https', got {asked!r}")
    if settings.github_git_url:
        return (
            "ssh" if not settings.github_git_url.startswith(("https://", "http://", "file://")) else "https"
        )
    # A deploy key wins; then the token (the app's installation token, or the personal one); with
    # neither, the user's own ssh set-up.
    if key is not None or (token is None and settings.github_api_token is None and not settings.github_app):
        return "ssh"
    return "https"


def base_url(settings: Settings, transport: Transport) -> str:
    host = settings.github_host or "github.com"
    if settings.github_git_url:
        return settings.github_git_url
    return f"git@{host}:" if transport == "ssh" else f"https://{host}/"


def git_env(
    settings: Settings, transport: Transport, base: str, key: Path | None, token: str | None = None
) -> dict[str, str]:
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if transport == "ssh":
        command = ["ssh", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
        if key is not None:
            command += ["-i", str(key.resolve()), "-o", "IdentitiesOnly=yes"]
        if settings.github_known_hosts is not None:
            command += ["-o", f"UserKnownHostsFile={settings.github_known_hosts.resolve()}"]
        env["GIT_SSH_COMMAND"] = shlex.join(command)
    elif token is not None and base.startswith("https://"):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update(
            {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"http.{base}.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
            }
        )
    return env


def plan_checkout(
    settings: Settings,
    event: EventInfo,
    *,
    merge: bool = False,
    transport: str | None = None,
    cwd: Path | None = None,
    token: str | None = None,
) -> CheckoutPlan:
    """What to fetch for the event: a PR's head (``refs/pull/N/head``), a pushed ref, or the sha.

    ``token``: what authenticates https (a GitHub App installation's token); None: the personal token.
    """
    if token is None and settings.github_api_token is not None:
        token = settings.github_api_token.get_secret_value()
    if not event.repo or not event.sha:
        raise ConfigurationError(f"checkout: event {event.name} names no repository and commit")
    check_names(event.repo, event.sha, event.ref, event.branch if merge else None)
    key = ssh_key(settings, cwd)
    how = transport_for(settings, key, transport, token)
    base = base_url(settings, how)
    if event.pr_number is not None:
        refspec = f"refs/pull/{event.pr_number}/head"
    elif event.ref and event.ref.startswith("refs/"):
        refspec = event.ref
    else:
        refspec = event.sha
    base_ref = None
    # A merge group's head already is its pull requests merged onto the base: it is checked out as is.
    if merge and event.name != "merge_group":
        if event.pr_number is None or not event.branch:
            raise ConfigurationError("checkout: merge=True needs a pull request event (it has a base branch)")
        base_ref = f"refs/heads/{event.branch}"
    return CheckoutPlan(
        url=f"{base}{event.repo}.git",
        refspec=refspec,
        sha=event.sha,
        base_ref=base_ref,
        env=git_env(settings, how, base, key, token),
    )


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment git runs with: the allowlist (``execution.task_env``), never Hamster's settings."""
    return for_git(os.environ, extra)
