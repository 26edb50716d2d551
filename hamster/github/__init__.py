"""Hamster's GitHub adapter: the only package that imports github3.

``session`` (token or installation auth, API URL, rate limits), ``app`` (the GitHub App's JWT and its
installations' tokens), ``client`` (one connection per worker and installation, awaitable calls),
``objects`` (``ctx.github``: the event's connected objects), ``rate_limit`` (the pure waiting rules).
"""

from __future__ import annotations

from hamster.github.client import GitHubCallFailed, GitHubClient, client_for
from hamster.github.objects import EventObjects
from hamster.github.session import api_url, connect

__all__ = ["EventObjects", "GitHubCallFailed", "GitHubClient", "api_url", "client_for", "connect"]
