"""The GitHub App manifest Hamster needs: its permissions and events, and where to create the app from it.

GitHub's manifest flow (https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest):
a form POSTs the manifest (field ``manifest``) to ``/settings/apps/new`` (or an organisation's
``/organizations/<org>/settings/apps/new``) on github.com or a GitHub Enterprise Server; after the app is
created GitHub sends the browser to ``redirect_url?code=…``, and ``POST /app-manifests/<code>/conversions``
(within an hour) answers the app's id, private key and webhook secret. Pure: no I/O here.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

# What Hamster's tasks and reporting do with each (README, "GitHub App").
PERMISSIONS = {
    "checks": "write",  # check runs per run, with their Cancel button
    "statuses": "write",  # commit statuses
    "contents": "write",  # checkout (read); the merge task (write)
    "pull_requests": "write",  # ctx.github.pull_request, merge
    "issues": "write",  # comments, labels, assignees
    "metadata": "read",  # required of every app
}
# Every event the permissions above allow that subscribers commonly filter on; check_run and check_suite
# carry the Re-run and Cancel clicks.
EVENTS = [
    "check_run",
    "check_suite",
    "create",
    "delete",
    "issue_comment",
    "issues",
    "pull_request",
    "pull_request_review",
    "pull_request_review_comment",
    "push",
    "release",
    "status",
]


def manifest(url: str, name: str = "Hamster CI", public: bool = False) -> dict[str, Any]:
    """The manifest for a Hamster served at ``url`` (its public base: webhooks go to /webhooks/github)."""
    base = url.rstrip("/")
    return {
        "name": name,
        "url": base,
        "hook_attributes": {"url": f"{base}/webhooks/github", "active": True},
        "redirect_url": f"{base}/github-app/created",
        "description": "Hamster CI: pipelines of Python tasks run on GitHub events.",
        "public": public,
        "default_permissions": dict(PERMISSIONS),
        "default_events": list(EVENTS),
    }


def create_url(host: str | None = None, org: str | None = None) -> str:
    """Where the manifest is POSTed: github.com or an Enterprise Server, for a user or an organisation."""
    site = f"https://{host or 'github.com'}"
    if org:
        return f"{site}/organizations/{quote(org, safe='')}/settings/apps/new"
    return f"{site}/settings/apps/new"


def form_page(manifest_json: dict[str, Any], action: str) -> str:
    """A page with one button that POSTs the manifest to GitHub (the flow needs a form, not a link)."""
    value = html.escape(json.dumps(manifest_json), quote=True)
    return (
        "<!doctype html>\n<meta charset=utf-8><title>Create the Hamster CI GitHub App</title>\n"
        f'<form action="{html.escape(action, quote=True)}" method="post">\n'
        f'  <input type="hidden" name="manifest" value="{value}">\n'
        '  <button type="submit">Create the GitHub App</button>\n</form>\n'
    )
