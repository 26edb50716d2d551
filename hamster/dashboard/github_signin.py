"""Signing in with GitHub: the OAuth web application flow, as a client of github.com.

https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#web-application-flow
1. the browser goes to ``<github>/login/oauth/authorize?client_id&redirect_uri&state&scope``;
2. GitHub sends it back to the callback with ``code`` and the same ``state``;
3. the code is exchanged (with the client secret) at ``<github>/login/oauth/access_token``;
4. ``GET /user`` with that token says who signed in; ``GET /user/memberships/orgs/{org}`` whether they
   belong to the organization the deployment names.
The token is used for these calls only and never kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from hamster.credentials import Role
from hamster.errors import HamsterError
from hamster.settings import Settings

_TIMEOUT = aiohttp.ClientTimeout(total=15)


class SignInRefused(HamsterError):
    """GitHub did not vouch for the user, or the user may not sign in here."""


@dataclass(frozen=True)
class GitHubSignIn:
    client_id: str
    client_secret: str
    web_url: str  # https://github.com
    api_url: str  # https://api.github.com
    org: str | None
    users: frozenset[str]
    operators: frozenset[str]
    role: Role

    @classmethod
    def for_settings(cls, settings: Settings) -> GitHubSignIn | None:
        # Not at the top: it brings github3, and `hamster --help` loads the dashboard (through `hamster web`).
        from hamster.github.session import api_url

        if settings.github_oauth_client_id is None or settings.github_oauth_client_secret is None:
            return None
        return cls(
            client_id=settings.github_oauth_client_id,
            client_secret=settings.github_oauth_client_secret.get_secret_value(),
            web_url=settings.github_web,
            api_url=api_url(settings),
            org=settings.github_oauth_org,
            users=Settings.logins(settings.github_oauth_users),
            operators=Settings.logins(settings.github_oauth_operators),
            role=settings.github_oauth_role,
        )

    @property
    def may_operate(self) -> bool:
        return self.role == "operate" or bool(self.operators)

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = {"client_id": self.client_id, "redirect_uri": redirect_uri, "state": state}
        query["scope"] = "read:org" if self.org else ""
        query["allow_signup"] = "false"
        return f"{self.web_url}/login/oauth/authorize?{urlencode(query)}"

    async def sign_in(self, code: str, redirect_uri: str) -> tuple[str, Role]:
        """The login and role of whoever GitHub gave ``code`` to; ``SignInRefused`` otherwise."""
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http:
            token = await self._exchange(http, code, redirect_uri)
            user = await self._get(http, token, "/user")
            login = user.get("login") if isinstance(user, dict) else None
            if not isinstance(login, str) or not login:
                raise SignInRefused("GitHub's /user answer names no login")
            if self.users and login.lower() not in self.users:
                raise SignInRefused(f"{login} is not among the users allowed to sign in here")
            if self.org is not None:
                membership = await self._get(
                    http, token, f"/user/memberships/orgs/{self.org}", missing_ok=True
                )
                if not isinstance(membership, dict) or membership.get("state") != "active":
                    raise SignInRefused(f"{login} is not an active member of {self.org}")
        role: Role = "operate" if login.lower() in self.operators else self.role
        return login, role

    async def _exchange(self, http: aiohttp.ClientSession, code: str, redirect_uri: str) -> str:
        form = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
        }
        try:
            async with http.post(
                f"{self.web_url}/login/oauth/access_token", data=form, headers={"Accept": "application/json"}
            ) as answer:
                body: Any = await answer.json(content_type=None)
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SignInRefused(f"GitHub did not answer the code exchange: {exc}") from None
        # GitHub answers 200 with {"error": ...} for a bad, used or expired code.
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            error = body.get("error_description") or body.get("error") if isinstance(body, dict) else None
            raise SignInRefused(f"GitHub refused the sign-in code: {error or status}")
        return str(body["access_token"])

    async def _get(self, http: aiohttp.ClientSession, token: str, path: str, missing_ok: bool = False) -> Any:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        try:
            async with http.get(f"{self.api_url}{path}", headers=headers) as answer:
                if missing_ok and answer.status in (403, 404):
                    return None
                if answer.status != 200:
                    raise SignInRefused(f"GitHub answered {answer.status} to GET {path}")
                return await answer.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SignInRefused(f"GitHub did not answer GET {path}: {exc}") from None
