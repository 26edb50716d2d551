"""The dashboard's pages and its JSON API, as aiohttp routes mounted on the intake's app.

    GET  /runs               runs, filtered by repository / subscriber / status; ?partial=rows for the
                             table body alone (the page refreshes itself with it); ?limit= (100) and
                             ?cursor= (keyset pages: the "Older runs" link, /api/runs's Link header)
    GET  /runs/{run_id}      one run: stage timeline, durations, outputs, errors, its live log, artifacts,
                             test reports, GitHub link
    GET  /runs/{run_id}/log  the run's log as Server-Sent Events (``lines`` events, then ``end``): live
                             while the run goes on, read back from ``<ns>.logs`` once it ended; ?stage=
    GET  /runs/{run_id}/log.txt                      the raw text of the log (?stage=)
    GET  /runs/{run_id}/artifacts/{name}             download an artifact (?stage= when several have it)
    GET  /subscribers        the subscribers table; enable/disable buttons for the operate role
    GET  /api/runs           GET /api/runs/{run_id}    GET /api/subscribers
    POST /api/subscribers/{name}/enable|disable      (the operate role)
    POST /api/runs/{run_id}/replay                   (same; only when a replay function is given)
    GET  /api/dead-letters                           (same; only when the dead-letter functions are given)
    POST /api/dead-letters/{number}/replay           (same)
    POST /api/runs/{run_id}/stages/{stage}/approve|deny  (same: an approval stage, "by the dashboard")
    POST /api/trigger                                (same; JSON {subscriber, repo, ref, params}: a manual
                                                     run, as ``hamster trigger``; the subscribers page's form)
    GET/POST /signin, GET /signin/github[/callback], POST /signout     (``hamster.dashboard.access``)

Every route needs a login (``hamster.dashboard.access``): the read role for reading, operate for changing
and for the dead letters (a dead letter carries the original record's bytes, which may hold anything a
webhook or a stage request held). The changing endpoints exist only where someone can hold the operate
role (an operate token, or GitHub sign-in that can grant it): elsewhere they answer 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web
from sqlalchemy import Engine

from hamster.dashboard import access as access_
from hamster.dashboard import views
from hamster.dashboard.access import Access
from hamster.dashboard.backend import (
    Decide,
    ListDeadLetters,
    ListSubscribers,
    Replay,
    ReplayDeadLetter,
    SetEnabled,
    Trigger,
)
from hamster.dashboard.log_view import Lines, raw_text
from hamster.errors import BrokerError, HamsterError, TaskError, UnknownDeadLetter
from hamster.execution.artifacts import ArtifactStore
from hamster.execution.stage_logs import LogChunk
from hamster.projection.queries import get_run, list_runs, next_cursor
from hamster.runs.lifecycle import RunStatus

STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
REFRESH_MS = 3000
KEEPALIVE_S = 15.0
# streams.log_topic.read_run_log with the settings given: (run id, since_ms=, follow=, stage=) → chunks
ReadLog = Callable[..., AsyncIterator[tuple[int, LogChunk]]]


@dataclass(frozen=True)
class Dashboard:
    """What the routes read from and act through."""

    engine: Engine
    list_subscribers: ListSubscribers
    set_enabled: SetEnabled
    access: Access = field(default_factory=Access)
    replay: Replay | None = None
    github_web_url: str = "https://github.com"
    list_dead_letters: ListDeadLetters | None = None
    replay_dead_letter: ReplayDeadLetter | None = None
    trigger: Trigger | None = None
    decide: Decide | None = None
    read_log: ReadLog | None = None  # None: the run page shows no log
    artifacts: ArtifactStore | None = None  # None: no artifacts or test reports


DASHBOARD = web.AppKey("dashboard", Dashboard)
_TEMPLATES = web.AppKey("dashboard_templates", jinja2.Environment)


def mount(app: web.Application, dashboard: Dashboard) -> None:
    """The dashboard's routes on ``app``, behind ``dashboard.access`` (which guards all of ``app``'s
    routes except its ``open_paths``)."""
    app[DASHBOARD] = dashboard
    access_.install(app, dashboard.access)
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
    if dashboard.read_log is not None:
        app.router.add_get("/runs/{run_id}/log", run_log_events)
        app.router.add_get("/runs/{run_id}/log.txt", run_log_text)
    if dashboard.artifacts is not None:
        app.router.add_get("/runs/{run_id}/artifacts/{name:.+}", run_artifact)
    app.router.add_get("/subscribers", subscribers_page)
    app.router.add_get("/api/runs", api_runs)
    app.router.add_get("/api/runs/{run_id}", api_run)
    app.router.add_get("/api/subscribers", api_subscribers)
    if dashboard.access.may_operate:
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
        "cursor": query.get("cursor") or None,
    }


async def _runs(request: web.Request) -> tuple[list[dict[str, Any]], str | None]:
    """A page of runs and the URL of the next one (None: this was the last)."""
    filters = _filters(request)
    try:
        # SQLAlchemy blocks; the intake's event loop must stay free for webhooks.
        found = await asyncio.to_thread(list_runs, request.app[DASHBOARD].engine, **filters)
    except ValueError as exc:  # a cursor this listing did not make
        raise web.HTTPBadRequest(text=str(exc)) from None
    more = next_cursor(found, filters["limit"])
    if more is None:
        return found, None
    return found, str(request.rel_url.update_query(cursor=more).without_query_params("partial"))


async def _run(request: web.Request) -> dict[str, Any]:
    run = await asyncio.to_thread(get_run, request.app[DASHBOARD].engine, request.match_info["run_id"])
    if run is None:
        raise web.HTTPNotFound(text=f"no run {request.match_info['run_id']}")
    return run


def render_page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    dashboard = request.app[DASHBOARD]
    principal = access_.principal_of(request)
    can_change = bool(dashboard.access.may_operate and principal is not None and principal.may("operate"))
    html = (
        request.app[_TEMPLATES]
        .get_template(template)
        .render(
            can_change=can_change,
            can_replay=bool(can_change and dashboard.replay),
            principal=principal,
            signed_in=access_.signed_in(request),
            csrf=access_.csrf_for(request),
            **context,
        )
    )
    return web.Response(text=html, content_type="text/html", status=status)


_render = render_page


# pages
async def runs_page(request: web.Request) -> web.Response:
    found, older = await _runs(request)
    if request.query.get("partial") == "rows":
        return _render(request, "_run_rows.html", runs=found)
    return _render(
        request, "runs.html", runs=found, filters=_filters(request), statuses=STATUSES, older=older
    )


async def run_page(request: web.Request) -> web.Response:
    run = await _run(request)
    dashboard = request.app[DASHBOARD]
    link = views.github_link(run, dashboard.github_web_url)
    kept: list[Any] = []
    reports: dict[str, Any] = {}
    if dashboard.artifacts is not None:
        store = dashboard.artifacts
        # fsspec calls block (and reach an object store in deployments): off the loop.
        kept, reports = await asyncio.gather(
            asyncio.to_thread(store.list_run, run["run_id"]), asyncio.to_thread(store.reports, run["run_id"])
        )
    return _render(
        request,
        "run.html",
        run=run,
        github_link=link,
        bars=views.timeline(run),
        columns=views.graph_columns(run),
        has_log=dashboard.read_log is not None,
        artifacts=kept,
        reports=reports,
    )


def _since_ms(run: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(run["requested_at"]).timestamp() * 1000)


async def run_log_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html): each
    ``lines`` event carries the lines one chunk completed; ``end`` says the log is complete. A comment
    line every ``KEEPALIVE_S`` while nothing is printed finds a page that was closed (aiohttp does not
    cancel a handler whose client left), so its Kafka consumer stops."""
    run = await _run(request)
    read_log = request.app[DASHBOARD].read_log
    assert read_log is not None
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    chunks = read_log(
        run["run_id"],
        since_ms=_since_ms(run),
        follow=not views.is_final(run["status"]),
        stage=request.query.get("stage") or None,
    )
    # Unbounded: a run's log is bounded already (HAMSTER_LOG_MAX_BYTES per stage attempt).
    arrived: asyncio.Queue[tuple[int, LogChunk] | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for found in chunks:
                arrived.put_nowait(found)
        finally:
            arrived.put_nowait(None)

    pumping = asyncio.ensure_future(pump())
    lines = Lines()
    try:
        while True:
            try:
                found = await asyncio.wait_for(arrived.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if found is None:
                break
            event = lines.add(found[1])
            if event is not None:
                await response.write(f"event: lines\nid: {found[0]}\ndata: {json.dumps(event)}\n\n".encode())
        await pumping  # the reader's error, if it failed
        await response.write(b"event: end\ndata: {}\n\n")
    finally:
        pumping.cancel()  # the page went away: the reader's consumer stops with it
        with contextlib.suppress(BaseException):
            await pumping
    return response


async def run_log_text(request: web.Request) -> web.Response:
    run = await _run(request)
    read_log = request.app[DASHBOARD].read_log
    assert read_log is not None
    stage = request.query.get("stage") or None
    found = [chunk async for _, chunk in read_log(run["run_id"], since_ms=_since_ms(run), stage=stage)]
    name = f"run-{run['run_id'][:8]}{'-' + stage if stage else ''}.log"
    return web.Response(
        text=raw_text(found),
        content_type="text/plain",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


async def run_artifact(request: web.Request) -> web.StreamResponse:
    run = await _run(request)
    store = request.app[DASHBOARD].artifacts
    assert store is not None
    name, stage = request.match_info["name"], request.query.get("stage")
    try:
        artifact = await asyncio.to_thread(store.find, run["run_id"], name, [stage] if stage else None)
    except TaskError as exc:  # no such artifact, or a name that cannot be one
        raise web.HTTPNotFound(text=str(exc)) from None
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{name.rsplit("/", 1)[-1]}"',
            "Content-Length": str(artifact.size),
        }
    )
    await response.prepare(request)
    source = await asyncio.to_thread(store.open, artifact)
    try:
        while block := await asyncio.to_thread(source.read, 256 * 1024):
            await response.write(block)
    finally:
        source.close()
    return response


async def subscribers_page(request: web.Request) -> web.Response:
    states = await request.app[DASHBOARD].list_subscribers()
    return _render(request, "subscribers.html", subscribers=sorted(states.items()))


# API
async def api_runs(request: web.Request) -> web.Response:
    """A page of runs, newest first; the next page's URL in a ``Link: <…>; rel="next"`` header (RFC 8288,
    as GitHub's API pages), absent on the last page."""
    found, older = await _runs(request)
    headers = {"Link": f'<{older}>; rel="next"'} if older else {}
    return web.json_response(found, headers=headers)


async def api_run(request: web.Request) -> web.Response:
    return web.json_response(await _run(request))


async def api_subscribers(request: web.Request) -> web.Response:
    states = await request.app[DASHBOARD].list_subscribers()
    return web.json_response([state.model_dump(mode="json") for _, state in sorted(states.items())])


async def api_set_enabled(request: web.Request) -> web.Response:
    dashboard = request.app[DASHBOARD]
    name, enable = request.match_info["name"], request.match_info["verb"] == "enable"
    if name not in await dashboard.list_subscribers():
        raise web.HTTPNotFound(text=f"no subscriber named {name!r}")
    await dashboard.set_enabled(name, enable)
    # Workers apply the change when it reaches them; the answer says it was published, not yet applied.
    return web.json_response({"name": name, "enabled": enable, "published": True}, status=202)


async def api_replay(request: web.Request) -> web.Response:
    run = await _run(request)
    replay = request.app[DASHBOARD].replay
    assert replay is not None
    try:
        started = await replay(run["run_id"])
    except HamsterError as exc:  # e.g. the webhook is past the events topic's retention
        raise web.HTTPConflict(text=str(exc)) from None
    return web.json_response(started, status=202)


async def api_decide(request: web.Request) -> web.Response:
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
    list_dead_letters = request.app[DASHBOARD].list_dead_letters
    assert list_dead_letters is not None
    try:
        letters = await list_dead_letters()
    except BrokerError as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    return web.json_response(letters)


async def api_replay_dead_letter(request: web.Request) -> web.Response:
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
