"""The fake GitHub's OAuth web application flow, checked as github.com checks it.

https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#web-application-flow

- ``GET /login/oauth/authorize?client_id&redirect_uri&state&scope`` shows a sign-in page (login field and
  an Authorize button) for a registered client only; ``redirect_uri`` must be the registered callback URL
  or a path under it (same host and port), else GitHub sends the browser to the callback with
  ``error=redirect_uri_mismatch``. Authorizing sends the browser to ``redirect_uri?code=…&state=…``.
- ``POST /login/oauth/access_token`` (form or JSON: client_id, client_secret, code, redirect_uri) answers
  200 always, as GitHub does, with ``{"error": …}`` for wrong client credentials, a code that is unknown,
  used already, expired (``code_lifetime_s``, ten minutes on GitHub) or given to another client, and a
  redirect_uri other than the one the code was given for. The answer is JSON with ``Accept:
  application/json``, else form-encoded. Codes are single-use; tokens (``gho_…``) expire after
  ``token_lifetime_s``.
- ``GET /user`` with the token (``Authorization: Bearer`` or ``token``) answers the recorded
  ``GET /users/{login}`` body (GitHub_user.json) with the user's login and id put in; ``GET
  /user/memberships/orgs/{org}`` needs the ``read:org`` scope (else 403) and answers 404 to non-members.
  An unknown or expired token is 401 "Bad credentials".
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from tests.fakegithub.apps import Refused
from tests.fakegithub.cassettes import recorded

DOCS = (
    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
)


@dataclass
class Code:
    client_id: str
    login: str
    redirect_uri: str
    scope: str
    expires_at: float
    used: bool = False


@dataclass
class OAuthToken:
    login: str
    scope: str
    expires_at: float


@dataclass
class FakeOAuth:
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # client id → (secret, callback URL)
    users: dict[str, int] = field(default_factory=dict)  # login → user id
    orgs: dict[str, set[str]] = field(default_factory=dict)  # org → active member logins
    code_lifetime_s: float = 600.0
    token_lifetime_s: float = 8 * 3600.0
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: dict[str, OAuthToken] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # set-up, from tests
    def register(self, callback_url: str) -> tuple[str, str]:
        """A new OAuth app whose callback is ``callback_url``: (client id, client secret)."""
        client_id, secret = "Iv1." + secrets.token_hex(8), secrets.token_hex(20)
        self.clients[client_id] = (secret, callback_url)
        return client_id, secret

    def add_user(self, login: str, orgs: tuple[str, ...] = ()) -> None:
        self.users[login] = 1_000_000 + len(self.users)
        for org in orgs:
            self.orgs.setdefault(org, set()).add(login)

    # the routes
    def mount(self, app: web.Application) -> None:
        app.router.add_get("/login/oauth/authorize", self.authorize_page)
        app.router.add_post("/login/oauth/authorize", self.authorize)
        app.router.add_post("/login/oauth/access_token", self.access_token)
        app.router.add_get("/user", self.user)
        app.router.add_get("/user/memberships/orgs/{org}", self.membership)

    def _check_redirect(self, client_id: str, redirect_uri: str | None) -> str:
        _, callback = self.clients[client_id]
        if not redirect_uri:
            return callback
        given, registered = urlsplit(redirect_uri), urlsplit(callback)
        same_origin = (given.scheme, given.netloc) == (registered.scheme, registered.netloc)
        under = given.path == registered.path or given.path.startswith(registered.path.rstrip("/") + "/")
        if not (same_origin and under) or ".." in given.path:
            raise Refused(302, callback)
        return redirect_uri

    async def authorize_page(self, request: web.Request) -> web.Response:
        query = request.query
        client_id = query.get("client_id", "")
        if client_id not in self.clients:
            return web.Response(status=404, text="Not Found")
        try:
            redirect_uri = self._check_redirect(client_id, query.get("redirect_uri"))
        except Refused as refused:
            where = (
                refused.message
                + "?"
                + urlencode({"error": "redirect_uri_mismatch", "state": query.get("state", "")})
            )
            return web.Response(status=302, headers={"Location": where})
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
            for name, value in (
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("state", query.get("state", "")),
                ("scope", query.get("scope", "")),
            )
        )
        page = (
            "<!doctype html><title>Authorize application</title><h1>Sign in to GitHub</h1>"
            f'<form method="post" action="/login/oauth/authorize">{hidden}'
            '<label>Username <input name="login" id="login_field"></label>'
            '<button type="submit" name="authorize" value="1" id="js-oauth-authorize-btn">Authorize</button>'
            "</form>"
        )
        return web.Response(text=page, content_type="text/html")

    async def authorize(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id, login = str(form.get("client_id", "")), str(form.get("login", ""))
        if client_id not in self.clients:
            return web.Response(status=404, text="Not Found")
        if login not in self.users:
            return web.Response(status=401, text="Incorrect username or password.")
        redirect_uri = self._check_redirect(client_id, str(form.get("redirect_uri", "")) or None)
        code = secrets.token_hex(10)
        with self._lock:
            self.codes[code] = Code(
                client_id, login, redirect_uri, str(form.get("scope", "")), time.time() + self.code_lifetime_s
            )
        where = redirect_uri + "?" + urlencode({"code": code, "state": str(form.get("state", ""))})
        return web.Response(status=302, headers={"Location": where})

    async def access_token(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            params: dict[str, Any] = await request.json()
        else:
            params = dict(await request.post())
        answer = self._exchange(params)
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response(answer)
        return web.Response(text=urlencode(answer), content_type="application/x-www-form-urlencoded")

    def _exchange(self, params: dict[str, Any]) -> dict[str, str]:
        client_id, secret = str(params.get("client_id", "")), str(params.get("client_secret", ""))
        registered = self.clients.get(client_id)
        if registered is None or not secrets.compare_digest(registered[0], secret):
            return {
                "error": "incorrect_client_credentials",
                "error_description": "The client_id and/or client_secret passed are incorrect.",
                "error_uri": DOCS + "#incorrect-client-credentials",
            }
        with self._lock:
            code = self.codes.get(str(params.get("code", "")))
            fresh = code is not None and not code.used and code.expires_at > time.time()
            if code is not None:
                code.used = True  # single use, even when refused: a code tried twice is spent
        if code is None or not fresh or code.client_id != client_id:
            return {
                "error": "bad_verification_code",
                "error_description": "The code passed is incorrect or expired.",
                "error_uri": DOCS + "#bad-verification-code",
            }
        redirect_uri = params.get("redirect_uri")
        if redirect_uri and redirect_uri != code.redirect_uri:
            return {
                "error": "redirect_uri_mismatch",
                "error_description": (
                    "The redirect_uri MUST match the registered callback URL for this application."
                ),
                "error_uri": DOCS + "#redirect-uri-mismatch2",
            }
        token = "gho_" + secrets.token_hex(18)
        with self._lock:
            self.tokens[token] = OAuthToken(code.login, code.scope, time.time() + self.token_lifetime_s)
        return {"access_token": token, "token_type": "bearer", "scope": code.scope}

    def check(self, authorization: str | None) -> OAuthToken:
        """The token an ``Authorization`` header carries, as GitHub checks it; ``Refused`` otherwise."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() not in {"bearer", "token"} or not credential:
            raise Refused(401, "Requires authentication")
        token = self.tokens.get(credential.strip())
        if token is None or token.expires_at <= time.time():
            raise Refused(401, "Bad credentials")
        return token

    async def user(self, request: web.Request) -> web.Response:
        token = self.check(request.headers.get("Authorization"))
        base = f"{request.scheme}://{request.host}"
        body = recorded("GitHub_user", "GET", "/users/sigmavirus24", "sigmavirus24", token.login, base)
        body["id"] = self.users[token.login]
        body["avatar_url"] = f"https://avatars.githubusercontent.com/u/{body['id']}?v=4"
        return web.json_response(body)

    async def membership(self, request: web.Request) -> web.Response:
        token = self.check(request.headers.get("Authorization"))
        org = request.match_info["org"]
        if "read:org" not in token.scope.replace(",", " ").split():
            message = "You need at least read:org scope or user scope to list your organizations."
            return web.json_response({"message": message}, status=403)
        if token.login not in self.orgs.get(org, set()):
            return web.json_response({"message": "Not Found"}, status=404)
        base = f"{request.scheme}://{request.host}"
        # GitHub's "Get an organization membership for the authenticated user":
        # https://docs.github.com/en/rest/orgs/members
        return web.json_response(
            {
                "url": f"{base}/orgs/{org}/memberships/{token.login}",
                "state": "active",
                "role": "member",
                "organization_url": f"{base}/orgs/{org}",
                "organization": {"login": org, "url": f"{base}/orgs/{org}"},
                "user": {"login": token.login, "id": self.users[token.login], "type": "User"},
            }
        )
