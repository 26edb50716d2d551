"""Recorded GitHub webhook payloads (tests/fixtures/github/webhooks), and variants derived from them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

WEBHOOKS = Path(__file__).parent / "fixtures" / "github" / "webhooks"


def all_samples() -> list[tuple[str, Path]]:
    """(event name, file) for every recorded payload; the folder is the X-GitHub-Event name."""
    return sorted((p.parent.name, p) for p in WEBHOOKS.glob("*/*.json"))


def load(event: str, name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((WEBHOOKS / event / name).read_text())
    return payload


def with_repo(payload: dict[str, Any], full_name: str) -> dict[str, Any]:
    """The same payload for another repository: only repository.full_name/name/owner.login change, and the
    same of a pull request's base and head repositories that were that repository (a pull request from a
    branch of the repository stays one; ``from_fork`` makes a fork's)."""
    out = copy.deepcopy(payload)
    owner, name = full_name.split("/", 1)
    old = out["repository"]["full_name"]
    pull = out.get("pull_request")
    sides = [pull.get("base"), pull.get("head")] if isinstance(pull, dict) else []
    repos = [out["repository"]] + [
        side["repo"]
        for side in sides
        if isinstance(side, dict) and (side.get("repo") or {}).get("full_name") == old
    ]
    for repo in repos:
        repo["full_name"] = full_name
        repo["name"] = name
        repo["owner"] = {**repo["owner"], "login": owner}
    return out


def branch_push(branch: str = "main", files: tuple[str, ...] = ("src/app.py", "README.md")) -> dict[str, Any]:
    """The recorded push sample is a tag push with no commits; this derives a branch push from it.

    Changed: ``ref`` (to refs/heads/<branch>), ``after`` (a made-up sha) and ``commits`` (one commit that
    modifies ``files``). Everything else is the recorded payload.
    """
    out = copy.deepcopy(load("push", "1.payload.json"))
    out["ref"] = f"refs/heads/{branch}"
    out["after"] = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    out["commits"] = [
        {"id": out["after"], "message": "change", "added": [], "removed": [], "modified": list(files)}
    ]
    return out


def from_fork(payload: dict[str, Any], owner: str) -> dict[str, Any]:
    """A pull request payload whose head is in ``owner``'s fork of the base repository, as GitHub sends a
    fork's pull request: ``pull_request.head.repo`` becomes a copy of ``repository`` named
    ``<owner>/<name>`` with ``fork: true`` (and a new id), ``head.label`` and ``head.user.login`` name
    ``owner``. Nothing else changes."""
    out = copy.deepcopy(payload)
    base = out["repository"]
    fork = copy.deepcopy(base)
    fork.update(
        {
            "id": base["id"] + 1,
            "full_name": f"{owner}/{base['name']}",
            "fork": True,
            "html_url": f"https://github.com/{owner}/{base['name']}",
        }
    )
    fork["owner"] = {**fork["owner"], "login": owner, "id": fork["owner"]["id"] + 1}
    head = out["pull_request"]["head"]
    head["repo"] = fork
    head["label"] = f"{owner}:{head['ref']}"
    head["user"] = {**head["user"], "login": owner}
    return out
