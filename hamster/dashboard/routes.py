"""The dashboard's pages and its JSON API, as aiohttp routes mounted on the intake's app.

    GET  /runs               runs, filtered by repository / subscriber / status; ?partial=rows for the
                             table body alone (the page refreshes itself with it)
    GET  /runs/{run_id}      one run: stage timeline, durations, outputs, errors, log tails, GitHub link
    GET  /subscribers        the subscribers table; enable/disable buttons when a token is configured
    GET  /api/runs           GET /api/runs/{run_id}    GET /api/subscribers
    POST /api/subscribers/{name}/enable|disable      (Authorization: Bearer <HAMSTER_API_TOKEN>)
    POST /api/runs/{run_id}/replay                   (same; only when a replay function is given)
    GET  /api/dead-letters                           (same; only when the dead-letter functions are given)
    POST /api/dead-letters/{number}/replay           (same)
    POST /api/runs/{run_id}/stages/{stage}/approve|deny  (same: an approval stage, "by the dashboard")
    POST /api/trigger                                (same; JSON {subscriber, repo, ref, params}: a manual
                                                     run, as ``hamster trigger``; the subscribers page's form)

The changing endpoints exist only when a token is configured: without one they answer 404. So do both
dead-letter endpoints, reading included: a dead letter carries the original record's bytes, which may hold
anything a webhook or a stage request held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web
from sqlalchemy import Engine

from hamster.dashboard import views
from hamster.dashboard.auth import check_bearer
from hamster.dashboard.backend import (
    Decide,
    ListDeadLetters,
    ListSubscribers,
    Replay,
    ReplayDeadLetter,
    SetEnabled,
    Trigger,
)
from hamster.errors import BrokerError, HamsterError, UnknownDeadLetter
from hamster.lifecycle import RunStatus
from hamster.run_queries import get_run, list_runs

STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
REFRESH_MS = 3000


@dataclass(frozen=True)
class Dashboard:
    """What the routes read from and act through."""

    engine: Engine
    list_subscribers: ListSubscribers
    set_enabled: SetEnabled
    api_token: str | None = None
    replay: Replay | None = None
    github_web_url: str = "https://github.com"
    list_dead_letters: ListDeadLetters | None = None
    replay_dead_letter: ReplayDeadLetter | None = None
    trigger: Trigger | None = None
    decide: Decide | None = None


DASHBOARD = web.AppKey("dashboard", Dashboard)
_TEMPLATES = web.AppKey("dashboard_templates", jinja2.Environment)


def mount(app: web.Application, dashboard: Dashboard) -> None:
    app[DASHBOARD] = dashboard
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hamster.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(views=views, refresh_ms=REFRESH_MS)
    app[_TEMPLATES] = env
    app.router.add_get("/", home)
    app.router.add_get("/runs", runs_page)
    app.router.add_get("/runs/{run_id}", run_page)
    app.router.add_get("/subscribers", subscribers_page)
    app.router.add_get("/api/runs", api_runs)
    app.router.add_get("/api/runs/{run_id}", api_run)
    app.router.add_get("/api/subscribers", api_subscribers)
    if dashboard.api_token:
        app.router.add_post("/api/subscribers/{name}/{verb:enable|disable}", api_set_enabled)
        if dashboard.replay is not None:
            app.router.add_post("/api/runs/{run_id}/replay", api_replay)
        if dashboard.list_dead_letters is not None:
            app.router.add_get("/api/dead-letters", api_dead_letters)
        if dashboard.replay_dead_letter is not None:
            app.router.add_post("/api/dead-letters/{number}/replay", api_replay_dead_letter)
        if dashboard.decide is not None:
            app.router.add_post("/api/runs/{run_id}/stages/{stage}/{verb:approve|deny}", api_decide)
        if dashboard.trigger is not None:
            app.router.add_post("/api/trigger", api_trigger)


async def home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/runs")


def _filters(request: web.Request) -> dict[str, Any]:
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise web.HTTPBadRequest(text=f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = min(int(query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be a number") from None
    return {
        "repo": query.get("repo") or None,
        "subscriber": query.get("subscriber") or None,
        "status": status,
        "limit": max(limit, 1),
    }


async def _runs(request: web.Request) -> list[dict[str, Any]]:
    # SQLAlchemy blocks; the intake's event loop must stay free for webhooks.
    return await asyncio.to_thread(list_runs, request.app[DASHBOARD].engine, **_filters(request))


async def _run(request: web.Request) -> dict[str, Any]:
    run = await asyncio.to_thread(get_run, request.app[DASHBOARD].engine, request.match_info["run_id"])
    if run is None:
        raise web.HTTPNotFound(text=f"no run {request.match_info['run_id']}")
    return run


def _authorize(request: web.Request) -> None:
    token = request.app[DASHBOARD].api_token
    assert token is not None  # the changing routes are mounted only with a token
    verdict = check_bearer(request.headers.get("Authorization"), token)
    if verdict != "allowed":
        raise web.HTTPUnauthorized(
            text=f"{verdict} bearer token", headers={"WWW-Authenticate": 'Bearer realm="hamster"'}
        )


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    dashboard = request.app[DASHBOARD]
    html = (
        request.app[_TEMPLATES]
        .get_template(template)
        .render(
            can_change=bool(dashboard.api_token),
            can_replay=bool(dashboard.api_token and dashboard.replay),
            **context,
        )
    )
    return web.Response(text=html, content_type="text/html")


# pages
async def runs_page(request: web.Request) -> web.Response:
    found = await _runs(request)
    if request.query.get("partial") == "rows":
        return _render(request, "_run_rows.html", runs=found)
    return _render(request, "runs.html", runs=found, filters=_filters(request), statuses=STATUSES)


async def run_page(request: web.Request) -> web.Response:
    run = await _run(request)
    link = views.github_link(run, request.app[DASHBOARD].github_web_url)
    return _render(
        request,
        "run.html",
        run=run,
        github_link=link,
        bars=views.timeline(run),
        columns=views.graph_columns(run),
    )


async def subscribers_page(request: web.Request) -> web.Response:
    states = await request.app[DASHBOARD].list_subscribers()
    return _render(request, "subscribers.html", subscribers=sorted(states.items()))


# API
async def api_runs(request: web.Request) -> web.Response:
    return web.json_response(await _runs(request))


async def api_run(request: web.Request) -> web.Response:
    return web.json_response(await _run(request))


async def api_subscribers(request: web.Request) -> web.Response:
    states = await request.app[DASHBOARD].list_subscribers()
    return web.json_response([state.model_dump(mode="json") for _, state in sorted(states.items())])


async def api_set_enabled(request: web.Request) -> web.Response:
    _authorize(request)
    dashboard = request.app[DASHBOARD]
    name, enable = request.match_info["name"], request.match_info["verb"] == "enable"
    if name not in await dashboard.list_subscribers():
        raise web.HTTPNotFound(text=f"no subscriber named {name!r}")
    await dashboard.set_enabled(name, enable)
    # Workers apply the change when it reaches them; the answer says it was published, not yet applied.
    return web.json_response({"name": name, "enabled": enable, "published": True}, status=202)


async def api_replay(request: web.Request) -> web.Response:
    _authorize(request)
    run = await _run(request)
    replay = request.app[DASHBOARD].replay
    assert replay is not None
    try:
        started = await replay(run["run_id"])
    except HamsterError as exc:  # e.g. the webhook is past the events topic's retention
        raise web.HTTPConflict(text=str(exc)) from None
    return web.json_response(started, status=202)


async def api_decide(request: web.Request) -> web.Response:
    _authorize(request)
    run = await _run(request)
    stage = request.match_info["stage"]
    found = next((s for s in run["stages"] if s["name"] == stage), None)
    if found is None or not found["approval"]:
        raise web.HTTPNotFound(text=f"run {run['run_id']} has no approval stage {stage}")
    if found["status"] != "pending":
        raise web.HTTPConflict(text=f"stage {stage} is {found['status']}")
    decide = request.app[DASHBOARD].decide
    assert decide is not None
    sent = await decide(run["run_id"], stage, request.match_info["verb"] == "approve", "dashboard")
    return web.json_response(sent, status=202)


async def api_trigger(request: web.Request) -> web.Response:
    _authorize(request)
    trigger = request.app[DASHBOARD].trigger
    assert trigger is not None
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON body") from None
    fields = [body.get(k) if isinstance(body, dict) else None for k in ("subscriber", "repo", "ref")]
    params = body.get("params", {}) if isinstance(body, dict) else None
    if not all(isinstance(f, str) and f for f in fields) or not isinstance(params, dict):
        raise web.HTTPBadRequest(text="expected {subscriber, repo, ref: strings, params: an object}")
    subscriber, repo, ref = (str(f) for f in fields)
    try:
        started = await trigger(subscriber, repo, ref, {str(k): v for k, v in params.items()})
    except HamsterError as exc:  # e.g. the ref names no commit on GitHub
        raise web.HTTPConflict(text=str(exc)) from None
    return web.json_response(started, status=202)


async def api_dead_letters(request: web.Request) -> web.Response:
    _authorize(request)
    list_dead_letters = request.app[DASHBOARD].list_dead_letters
    assert list_dead_letters is not None
    try:
        letters = await list_dead_letters()
    except BrokerError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    return web.json_response(letters)


async def api_replay_dead_letter(request: web.Request) -> web.Response:
    _authorize(request)
    try:
        number = int(request.match_info["number"])
    except ValueError:
        raise web.HTTPBadRequest(
            text="a dead letter's number is an integer (see GET /api/dead-letters)"
        ) from None
    replay_dead_letter = request.app[DASHBOARD].replay_dead_letter
    assert replay_dead_letter is not None
    try:
        sent = await replay_dead_letter(number)
    except UnknownDeadLetter as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except BrokerError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    # Acknowledged by Kafka on the source topic; the agent that refused it reads it again from there.
    return web.json_response(sent, status=202)
