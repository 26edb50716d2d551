"""Who may see and change what, applied to every request the dashboard's app serves.

Default deny: every route needs a login (read for GET, operate for anything that changes, and for the
routes named in ``OPERATE_READS``) except the ones in ``Access.open_paths`` (the webhook intake's, the
health checks, the sign-in pages). A request proves who it is with ``Authorization: Bearer <API token>``
or with the session cookie a sign-in set; with the cookie, every POST needs the session's CSRF token too
(``X-CSRF-Token`` header or ``csrf_token`` form field). Without a login: 401 with ``WWW-Authenticate``
for ``/api/*`` (and any non-GET), a redirect to ``/signin`` for pages; wrong role: 403.
``HAMSTER_DASHBOARD_PUBLIC=true`` lets anyone read (changing still needs the operate role).

Every answer carries ``Content-Security-Policy: frame-ancestors 'none'`` and ``X-Frame-Options: DENY``
(no clickjacking of the buttons).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hamster.credentials import ApiToken, Principal, Role, Sessions, check_bearer, safe_next, token_principal
from hamster.dashboard.github_signin import GitHubSignIn, SignInRefused

log = logging.getLogger(__name__)

COOKIE = "hamster_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SIGNIN_PATHS = frozenset({"/signin", "/signin/github", "/signin/github/callback", "/signout"})
# Readings that need the operate role: a dead letter holds the original record's bytes.
OPERATE_READS = frozenset({"/api/dead-letters"})
SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Access:
    tokens: tuple[ApiToken, ...] = ()
    public: bool = False
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    session_max_age_s: int = 8 * 3600
    cookie_secure: str = "auto"  # auto | always | never
    public_url: str | None = None
    github: GitHubSignIn | None = None
    open_paths: frozenset[str] = frozenset()  # besides the sign-in pages

    @property
    def may_operate(self) -> bool:
        """Can anyone hold the operate role here? Else the changing routes are not mounted at all."""
        return any(t.role == "operate" for t in self.tokens) or (
            self.github is not None and self.github.may_operate
        )

    @property
    def sessions(self) -> Sessions:
        return Sessions(self.session_secret, self.session_max_age_s)


ACCESS = web.AppKey("access", Access)
_SESSIONS = web.AppKey("sessions", Sessions)


@dataclass
class Guarded:
    """What the middleware found: the principal (None on open routes without a login) and the session
    (anonymous ones included; None without a valid cookie)."""

    principal: Principal | None = None
    session: dict[str, Any] | None = None


GUARDED = web.RequestKey("hamster_guarded", Guarded)


def install(app: web.Application, access: Access) -> None:
    app[ACCESS] = access
    app[_SESSIONS] = access.sessions
    app.middlewares.append(guard)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/signin", signin_page)
    app.router.add_post("/signin", signin_with_token)
    app.router.add_post("/signout", signout)
    if access.github is not None:
        app.router.add_get("/signin/github", signin_github)
        app.router.add_get("/signin/github/callback", github_callback)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def session_of(request: web.Request) -> dict[str, Any] | None:
    return request[GUARDED].session if GUARDED in request else None


def principal_of(request: web.Request) -> Principal | None:
    return request[GUARDED].principal if GUARDED in request else None


def signed_in(request: web.Request) -> bool:
    """Signed in through a session (so there is something to sign out of)."""
    return Sessions.principal(session_of(request)) is not None


def csrf_for(request: web.Request) -> str:
    session = session_of(request)
    return request.app[_SESSIONS].csrf_token(session) if session else ""


def _route_path(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _needed(request: web.Request) -> Role | None:
    """The role a route needs, or None for the open ones."""
    path = _route_path(request)
    if path in SIGNIN_PATHS or path in request.app[ACCESS].open_paths:
        return None
    if request.method in {"GET", "HEAD", "OPTIONS"} and path not in OPERATE_READS:
        return "read"
    return "operate"


def _unauthorized(request: web.Request, why: str, offered: bool = False) -> web.StreamResponse:
    """401 for API clients (and any token offered and refused), a redirect to sign in for browsers."""
    challenge = {
        "WWW-Authenticate": f'Bearer realm="hamster", error="invalid_token", error_description="{why}"'
    }
    if offered or request.path.startswith("/api/") or request.method not in {"GET", "HEAD"}:
        return web.json_response({"error": why}, status=401, headers=challenge)
    return redirect(f"/signin?next={quote(request.path_qs, safe='')}", challenge)


def redirect(location: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **(headers or {})})


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    access, sessions = request.app[ACCESS], request.app[_SESSIONS]
    if _route_path(request) in access.open_paths:
        return await handler(request)  # the intake's own: its signature is its credential
    session = sessions.load(request.cookies.get(COOKIE))
    request[GUARDED] = guarded = Guarded(session=session)
    authorization = request.headers.get("Authorization")
    principal: Principal | None = None
    by_cookie = False
    if authorization:  # a token offered is checked, even on the sign-in pages
        verdict = check_bearer(authorization, access.tokens)
        if not isinstance(verdict, Principal):
            return _unauthorized(request, f"{verdict} bearer token", offered=True)
        principal = verdict
    else:
        principal = Sessions.principal(session)
        by_cookie = principal is not None
    needed = _needed(request)
    if needed is not None and request.match_info.http_exception is None:
        if principal is None and access.public and needed == "read":
            principal = Principal("anonymous", "read", "public")
        if principal is None:
            return _unauthorized(request, "sign in, or send an API token")
        if not principal.may(needed):
            return web.json_response(
                {"error": f"{principal.name} has the {principal.role} role; this needs {needed}"}, status=403
            )
    changing = request.method not in {"GET", "HEAD", "OPTIONS"}
    needs_csrf = changing and not authorization and (by_cookie or _route_path(request) in SIGNIN_PATHS)
    if needs_csrf and not sessions.csrf_ok(session, await _offered_csrf(request)):
        return web.json_response({"error": "missing or wrong CSRF token; reload the page"}, status=403)
    guarded.principal = principal
    return await handler(request)


async def _offered_csrf(request: web.Request) -> str | None:
    offered = request.headers.get(CSRF_HEADER)
    if offered is None and request.content_type in {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }:
        form = await request.post()  # the handler reads the same parsed form
        value = form.get(CSRF_FIELD)
        offered = value if isinstance(value, str) else None
    return offered


def _secure(request: web.Request) -> bool:
    access = request.app[ACCESS]
    if access.cookie_secure != "auto":
        return access.cookie_secure == "always"
    return request.secure or bool(access.public_url and access.public_url.startswith("https://"))


def _set_session(request: web.Request, response: web.StreamResponse, session: dict[str, Any]) -> None:
    sessions = request.app[_SESSIONS]
    response.set_cookie(
        COOKIE,
        sessions.dump(session),
        max_age=sessions.max_age_s,
        path="/",
        httponly=True,
        secure=_secure(request),
        samesite="Lax",  # Lax, not Strict: GitHub's redirect back to the callback must carry it
    )


def _base_url(request: web.Request) -> str:
    access = request.app[ACCESS]
    return (access.public_url or f"{request.scheme}://{request.host}").rstrip("/")


# pages
async def signin_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    from hamster.dashboard.routes import render_page  # routes imports this module

    session = session_of(request) or Sessions.new()
    response = render_page(
        request,
        "signin.html",
        status=status,
        next=safe_next(request.query.get("next")),
        github=request.app[ACCESS].github is not None,
        error=error,
        signin_csrf=request.app[_SESSIONS].csrf_token(session),
    )
    _set_session(request, response, session)
    return response


async def signin_with_token(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    offered, target = form.get("token"), form.get("next")
    found = token_principal(offered, request.app[ACCESS].tokens) if isinstance(offered, str) else None
    if found is None:
        log.info("sign-in with a token refused")
        return await signin_page(request, error="That token is not valid here.", status=401)
    response = redirect(safe_next(target if isinstance(target, str) else None))
    # A new session id on every sign-in: a session planted before it is worth nothing after.
    _set_session(request, response, Sessions.new(sub=found.name, role=found.role, via="token"))
    log.info("%s signed in with a token (%s)", found.name, found.role)
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    response = redirect("/signin")
    response.del_cookie(COOKIE, path="/")
    return response


async def signin_github(request: web.Request) -> web.StreamResponse:
    github = request.app[ACCESS].github
    assert github is not None
    state = secrets.token_urlsafe(24)
    session = session_of(request) or Sessions.new()
    session = {**session, "state": state, "next": safe_next(request.query.get("next"))}
    response = redirect(github.authorize_url(state, f"{_base_url(request)}/signin/github/callback"))
    _set_session(request, response, session)
    return response


async def github_callback(request: web.Request) -> web.StreamResponse:
    github = request.app[ACCESS].github
    assert github is not None
    session = session_of(request)
    state, code = request.query.get("state"), request.query.get("code")
    expected = session.get("state") if session else None
    if not isinstance(expected, str) or not state or not secrets.compare_digest(state, expected):
        return await signin_page(
            request, error="The sign-in came back without its state; try again.", status=400
        )
    if not code:
        why = request.query.get("error_description") or "GitHub sent no code"
        return await signin_page(request, error=f"GitHub did not sign you in: {why}", status=401)
    try:
        login, role = await github.sign_in(code, f"{_base_url(request)}/signin/github/callback")
    except SignInRefused as exc:
        log.info("sign-in with GitHub refused: %s", exc)
        return await signin_page(request, error=str(exc), status=403)
    assert session is not None
    response = redirect(safe_next(session.get("next")))
    _set_session(request, response, Sessions.new(sub=login, role=role, via="github"))
    log.info("%s signed in with GitHub (%s)", login, role)
    return response
