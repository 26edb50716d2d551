"""``FakeGitHub``: a small aiohttp server on loopback answering like GitHub's REST API.

Bodies are the recorded real responses (``cassettes.py``) with the request's values put in. It checks the
credentials as GitHub does (the personal token, or the GitHub App's JWT and installation tokens, see
``apps.py``; check runs are written by an installation only), records every request it receives, keeps
what was written (statuses, comments, labels, check runs), and can be told to answer the next requests
with a rate limit (403 or 429) or a server error (500).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakegithub.apps import FakeApp, Refused
from tests.fakegithub.cassettes import recorded
from tests.fakegithub.oauth import FakeOAuth


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class Fault:
    kind: str  # "rate_limited" (403, x-ratelimit-remaining 0), "retry_after" (429), "server_error" (500)
    times: int
    method: str | None = None


@dataclass
class Repo:
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sha → statuses, oldest first
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # issue → comments
    labels: dict[int, list[str]] = field(default_factory=dict)
    assignees: dict[int, list[str]] = field(default_factory=dict)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    annotations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # check run id → appended
    merged: set[int] = field(default_factory=set)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)  # id → deployment
    deployment_statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # id → oldest first
    branches: dict[str, str] = field(default_factory=dict)  # branch → head sha (GET commits/{ref})
    permissions: dict[str, str] = field(default_factory=dict)  # login → admin/write/read (else none)


class FakeGitHub:
    def __init__(self, token: str = "fake-token-0123456789") -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.repos: dict[str, Repo] = {}
        self.faults: list[Fault] = []
        self.pr_heads: dict[tuple[str, int], str] = {}  # (repo, number) → head sha, for GET pulls/N
        self._next_id = 1000
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.app = FakeApp()  # the GitHub App, its installations and their tokens
        self.oauth = FakeOAuth()  # OAuth apps, users signing in with them, and their tokens
        self.rate_used: dict[str, int] = {}  # calls per rate-limit bucket ("personal", "installation:<id>")

    # control
    def fail(self, kind: str, times: int = 1, method: str | None = None) -> None:
        with self._lock:
            self.faults.append(Fault(kind, times, method))

    def repo(self, full_name: str) -> Repo:
        with self._lock:
            return self.repos.setdefault(full_name, Repo())

    def statuses(self, repo: str, sha: str) -> list[dict[str, Any]]:
        return list(self.repo(repo).statuses.get(sha, []))

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        return list(self.repo(repo).comments.get(number, []))

    def seen(self, method: str, path_part: str) -> list[Recorded]:
        return [r for r in list(self.requests) if r.method == method and path_part in r.path]

    def start(self) -> FakeGitHub:
        ready = threading.Event()

        def serve() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._runner = web.AppRunner(self._app(), access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = self._runner.addresses[0][1]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fake-github", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the fake GitHub did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # HTTP
    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = "/repos/{owner}/{name}"
        app.router.add_get(r, self._repository)
        app.router.add_get(r + "/pulls/{number}", self._pull)
        app.router.add_get(r + "/pulls/{number}/merge", self._is_merged)
        app.router.add_put(r + "/pulls/{number}/merge", self._merge)
        app.router.add_get(r + "/issues/{number}", self._issue)
        app.router.add_patch(r + "/issues/{number}", self._edit_issue)
        app.router.add_get(r + "/issues/{number}/comments", self._list_comments)
        app.router.add_post(r + "/issues/{number}/comments", self._create_comment)
        app.router.add_patch(r + "/issues/comments/{id}", self._edit_comment)
        app.router.add_get(r + "/issues/{number}/labels", self._list_labels)
        app.router.add_post(r + "/issues/{number}/labels", self._add_labels)
        app.router.add_delete(r + "/issues/{number}/labels/{label}", self._remove_label)
        app.router.add_post(r + "/issues/{number}/assignees", self._add_assignees)
        app.router.add_post(r + "/statuses/{sha}", self._create_status)
        app.router.add_get(r + "/commits/{sha}", self._commit)
        app.router.add_get(r + "/collaborators/{user}/permission", self._permission)
        app.router.add_get(r + "/commits/{sha}/check-runs", self._list_check_runs)
        app.router.add_post(r + "/check-runs", self._create_check_run)
        app.router.add_patch(r + "/check-runs/{id}", self._update_check_run)
        app.router.add_get(r + "/check-runs/{id}/annotations", self._list_annotations)
        self._deployment_routes(app, r)
        # The GitHub App (apps.py): the app's own endpoints, answered to its JWT only.
        app.router.add_get("/app", self._the_app)
        app.router.add_get("/app/installations/{id}", self._installation)
        app.router.add_post("/app/installations/{id}/access_tokens", self._access_token)
        app.router.add_get(r + "/installation", self._repo_installation)
        app.router.add_post("/app-manifests/{code}/conversions", self._convert_manifest)
        self.oauth.mount(app)  # the web flow (github.com/login/oauth/…) and GET /user
        return app

    # Credentials, as GitHub checks them.
    def _authorize(self, request: web.Request) -> tuple[str, int | None]:
        """("personal" | "app" | "installation", installation id), or ``Refused``."""
        header = request.headers.get("Authorization") or ""
        scheme, _, credential = header.partition(" ")
        owner, name = request.match_info.get("owner"), request.match_info.get("name")
        repo = f"{owner}/{name}" if owner and name else None
        if request.path.startswith("/app-manifests/"):
            return ("anonymous", None)  # the code in the path is the credential
        if request.path.startswith("/login/oauth/"):
            return ("anonymous", None)  # github.com's pages: the client's id and secret are checked there
        if request.path == "/user" or request.path.startswith("/user/"):
            self.oauth.check(request.headers.get("Authorization"))  # a user's OAuth token only
            return ("oauth", None)
        app_route = request.path == "/app" or request.path.startswith("/app/")
        if app_route or request.path.endswith("/installation"):
            if scheme.lower() != "bearer":
                raise Refused(401, "A JSON web token could not be decoded")
            self.app.check_jwt(credential)
            return ("app", None)
        if scheme.lower() == "bearer":
            # The app itself (not one of its installations) may only use the endpoints above.
            raise Refused(403, "Resource not accessible by integration")
        if scheme.lower() != "token" or not credential:
            raise Refused(401, "Requires authentication")
        if credential == self.token:
            if request.method in {"POST", "PATCH"} and "/check-runs" in request.path:
                # https://docs.github.com/en/rest/checks/runs: "only available to GitHub Apps"
                raise Refused(403, "You must authenticate via a GitHub App.")
            return ("personal", None)
        return ("installation", self.app.check_token(credential, repo))

    async def _the_app(self, request: web.Request) -> web.Response:
        return web.json_response(self.app.app_body(self.url))

    async def _installation(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.app.installation_body(int(request.match_info["id"]), self.url))
        except Refused as refused:
            return web.json_response({"message": refused.message}, status=refused.status)

    async def _access_token(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.app.new_token(int(request.match_info["id"])), status=201)
        except Refused as refused:
            return web.json_response({"message": refused.message}, status=refused.status)

    async def _repo_installation(self, request: web.Request) -> web.Response:
        try:
            installation = self.app.installation_for_repo(self._full(request))
            return web.json_response(self.app.installation_body(installation, self.url))
        except Refused as refused:
            return web.json_response({"message": refused.message}, status=refused.status)

    async def _convert_manifest(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.app.convert(request.match_info["code"], self.url), status=201)
        except Refused as refused:
            return web.json_response({"message": refused.message}, status=refused.status)

    def installation_of(self, recorded: Recorded) -> int | None:
        """The installation whose token authorized a recorded request (None: not an installation's)."""
        scheme, _, credential = (recorded.authorization or "").partition(" ")
        return self.app.installation_of_token(credential) if scheme == "token" else None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(
            Recorded(request.method, request.path, body, request.headers.get("Authorization"))
        )
        with self._lock:
            fault = next((f for f in self.faults if f.method in (None, request.method)), None)
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
        if fault is not None:
            return self._fault(fault.kind)
        try:
            kind, installation = self._authorize(request)
        except Refused as refused:
            return web.json_response(
                {"message": refused.message, "documentation_url": "https://docs.github.com/rest"},
                status=refused.status,
            )
        response: web.StreamResponse = await handler(request)
        # Every answer says what is left of the caller's own rate limit: an installation's is its own.
        bucket = f"installation:{installation}" if installation is not None else kind
        with self._lock:
            self.rate_used[bucket] = self.rate_used.get(bucket, 0) + 1
            used = self.rate_used[bucket]
        response.headers.update(
            {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": str(max(0, 5000 - used)),
                "X-RateLimit-Reset": str(int(time.time()) + 3600),
                "X-RateLimit-Used": str(used),
            }
        )
        return response

    @staticmethod
    def _fault(kind: str) -> web.Response:
        # Shaped like GitHub's answers: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
        if kind == "rate_limited":
            reset = int(time.time()) + 1
            return web.json_response(
                {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com",
                },
                status=403,
                headers={
                    "X-RateLimit-Limit": "5000",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
        if kind == "retry_after":
            return web.json_response(
                {"message": "You have exceeded a secondary rate limit."},
                status=429,
                headers={"Retry-After": "1"},
            )
        return web.json_response({"message": "Server Error"}, status=500)

    def _shaped(self, request: web.Request, name: str, method: str, suffix: str, recorded_repo: str) -> Any:
        repo = f"{request.match_info['owner']}/{request.match_info['name']}"
        return recorded(name, method, suffix, recorded_repo, repo, self.url)

    @staticmethod
    def _full(request: web.Request) -> str:
        return f"{request.match_info['owner']}/{request.match_info['name']}"

    async def _repository(self, request: web.Request) -> web.Response:
        body = self._shaped(
            request, "GitHub_repository", "GET", "/repos/sigmavirus24/github3.py", "sigmavirus24/github3.py"
        )
        return web.json_response(body)

    async def _pull(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        body = self._shaped(request, "PullRequest_single", "GET", "/pulls/235", "sigmavirus24/github3.py")
        text = json.dumps(body)
        for kind in ("pulls", "issues", "pull"):
            text = text.replace(f"/{kind}/235", f"/{kind}/{number}")
        body = json.loads(text)
        body["number"] = number
        sha = self.pr_heads.get((self._full(request), number))
        if sha:
            body["head"]["sha"] = sha
        return web.json_response(body)

    async def _is_merged(self, request: web.Request) -> web.Response:
        merged = int(request.match_info["number"]) in self.repo(self._full(request)).merged
        return web.Response(status=204 if merged else 404)

    async def _merge(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        self.repo(self._full(request)).merged.add(number)
        sha = (await request.json()).get("sha") or "0" * 40
        return web.json_response({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})

    async def _issue(self, request: web.Request) -> web.Response:
        body = self._shaped(request, "Issue_create_comment", "GET", "/issues/509", "sigmavirus24/github3.py")
        body["number"] = int(request.match_info["number"])
        for key in ("url", "comments_url", "labels_url", "events_url", "html_url"):
            if isinstance(body.get(key), str):
                body[key] = body[key].replace("/509", f"/{body['number']}")
        return web.json_response(body)

    async def _edit_issue(self, request: web.Request) -> web.Response:
        # github3's Issue.add_assignees edits the issue with the whole assignee list.
        number, data = int(request.match_info["number"]), await request.json()
        if "assignees" in data:
            self.repo(self._full(request)).assignees[number] = list(data["assignees"])
        response = await self._issue(request)
        body = json.loads(response.text or "{}")
        users = self.repo(self._full(request)).assignees.get(number, [])
        body["assignees"] = [{**(body.get("user") or {}), "login": u} for u in users]
        return web.json_response(body)

    def _comment_body(self, request: web.Request, comment_id: int, text: str, number: int) -> dict[str, Any]:
        body = self._shaped(
            request, "Issue_create_comment", "POST", "/issues/509/comments", "sigmavirus24/github3.py"
        )
        body.update(
            id=comment_id,
            body=text,
            url=f"{self.url}/repos/{self._full(request)}/issues/comments/{comment_id}",
            html_url=f"https://github.com/{self._full(request)}/issues/{number}#issuecomment-{comment_id}",
            issue_url=f"{self.url}/repos/{self._full(request)}/issues/{number}",
        )
        return body

    async def _list_comments(self, request: web.Request) -> web.Response:
        return web.json_response(self.comments(self._full(request), int(request.match_info["number"])))

    async def _create_comment(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        text = (await request.json())["body"]
        body = self._comment_body(request, self._new_id(), text, number)
        self.repo(self._full(request)).comments.setdefault(number, []).append(body)
        return web.json_response(body, status=201)

    async def _edit_comment(self, request: web.Request) -> web.Response:
        comment_id = int(request.match_info["id"])
        for comments in self.repo(self._full(request)).comments.values():
            for comment in comments:
                if comment["id"] == comment_id:
                    comment["body"] = (await request.json())["body"]
                    return web.json_response(comment)
        return web.json_response({"message": "Not Found"}, status=404)

    def _label_list(self, request: web.Request, names: list[str]) -> list[dict[str, Any]]:
        template = self._shaped(request, "Issue_add_labels", "POST", "/labels", "sigmavirus24/github3.py")[0]
        return [
            {**template, "name": n, "url": f"{self.url}/repos/{self._full(request)}/labels/{n}"}
            for n in names
        ]

    async def _list_labels(self, request: web.Request) -> web.Response:
        names = self.repo(self._full(request)).labels.get(int(request.match_info["number"]), [])
        return web.json_response(self._label_list(request, names))

    async def _add_labels(self, request: web.Request) -> web.Response:
        payload = await request.json()
        wanted = payload.get("labels", payload) if isinstance(payload, dict) else payload
        names = self.repo(self._full(request)).labels.setdefault(int(request.match_info["number"]), [])
        names.extend(n for n in wanted if n not in names)
        return web.json_response(self._label_list(request, names))

    async def _remove_label(self, request: web.Request) -> web.Response:
        names = self.repo(self._full(request)).labels.setdefault(int(request.match_info["number"]), [])
        label = request.match_info["label"]
        if label not in names:
            return web.json_response({"message": "Label does not exist"}, status=404)
        names.remove(label)
        return web.json_response(self._label_list(request, names))

    async def _add_assignees(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        users = self.repo(self._full(request)).assignees.setdefault(number, [])
        users.extend(u for u in (await request.json())["assignees"] if u not in users)
        body = self._shaped(request, "Issue_add_assignees", "POST", "/assignees", "sigmavirus24/github3.py")
        body["number"] = number
        body["assignees"] = [{**(body.get("assignee") or {}), "login": u} for u in users]
        return web.json_response(body, status=201)

    async def _create_status(self, request: web.Request) -> web.Response:
        sha, data = request.match_info["sha"], await request.json()
        if data.get("state") not in {"pending", "success", "failure", "error"}:
            return web.json_response({"message": "Validation Failed"}, status=422)
        if len(data.get("description") or "") > 140:
            return web.json_response({"message": "Validation Failed: description is too long"}, status=422)
        body = self._shaped(
            request,
            "Repository_create_status",
            "POST",
            "/statuses/24893ec07db2a12073703258f0089f105906d2e4",
            "github3py/github3.py",
        )
        body = json.loads(json.dumps(body).replace("24893ec07db2a12073703258f0089f105906d2e4", sha))
        body.update(
            id=self._new_id(),
            state=data["state"],
            description=data.get("description"),
            target_url=data.get("target_url"),
            context=data.get("context", "default"),
        )
        self.repo(self._full(request)).statuses.setdefault(sha, []).append(body)
        return web.json_response(body, status=201)

    async def _commit(self, request: web.Request) -> web.Response:
        # GET commits/{ref} takes a sha, a branch or a tag; a ref that names nothing is a 422.
        ref = request.match_info["sha"]
        sha = self.repo(self._full(request)).branches.get(ref.removeprefix("refs/heads/"))
        if sha is None and not re.fullmatch(r"[0-9a-f]{40}", ref):
            return web.json_response({"message": f"No commit found for SHA: {ref}"}, status=422)
        sha = sha or ref
        recorded_sha = "9aa43ea48c762b19e8191ae2c5c5fcb87fe30b44"
        body = self._shaped(
            request, "RepoCommit_status", "GET", f"/commits/{recorded_sha}", "sigmavirus24/github3.py"
        )
        return web.json_response(json.loads(json.dumps(body).replace(recorded_sha, sha)))

    async def _permission(self, request: web.Request) -> web.Response:
        # https://docs.github.com/en/rest/collaborators/collaborators#get-repository-permissions-for-a-user
        user = request.match_info["user"]
        permission = self.repo(self._full(request)).permissions.get(user, "none")
        role = {"admin": "admin", "write": "write", "read": "read"}.get(permission)
        return web.json_response(
            {"permission": permission, "role_name": role, "user": {"login": user, "type": "User"}}
        )

    async def _list_check_runs(self, request: web.Request) -> web.Response:
        sha = request.match_info["sha"]
        runs = [c for c in self.repo(self._full(request)).check_runs.values() if c["head_sha"] == sha]
        return web.json_response({"total_count": len(runs), "check_runs": runs})

    # https://docs.github.com/en/rest/checks/runs#update-a-check-run: "output.annotations": at most 50
    # per request (later requests append); each needs path, start_line, end_line, annotation_level and
    # message; columns only on one line; GitHub answers 422 otherwise.
    ANNOTATION_LEVELS = frozenset({"notice", "warning", "failure"})
    ANNOTATION_REQUIRED = {
        "path": str,
        "start_line": int,
        "end_line": int,
        "annotation_level": str,
        "message": str,
    }

    def _annotations(self, data: dict[str, Any]) -> list[dict[str, Any]] | str:
        """The annotations of a check-run write, or why GitHub would refuse them."""
        output = data.get("output")
        if output is None:
            return []
        if not isinstance(output.get("title"), str) or not isinstance(output.get("summary"), str):
            return "output needs a title and a summary"
        found = output.get("annotations", [])
        if not isinstance(found, list) or len(found) > 50:
            return "output.annotations: at most 50 per request"
        for note in found:
            for key, kind in self.ANNOTATION_REQUIRED.items():
                if not isinstance(note.get(key), kind):
                    return f"annotation: {key} is missing or not a {kind.__name__}"
            if note["annotation_level"] not in self.ANNOTATION_LEVELS:
                return f"annotation_level {note['annotation_level']!r} is not one of notice, warning, failure"
            if note["start_line"] < 1 or note["end_line"] < note["start_line"]:
                return "annotation: start_line must be ≥ 1 and ≤ end_line"
            columns = "start_column" in note or "end_column" in note
            if columns and note["start_line"] != note["end_line"]:
                return "annotation: columns are allowed only when start_line equals end_line"
            if len(note.get("title") or "") > 255 or len(note["message"]) >= 64 * 1024:
                return "annotation: title or message too long"
        return found

    # https://docs.github.com/en/rest/checks/runs#create-a-check-run: "actions": at most three buttons, each
    # with a label and an identifier of at most 20 characters and a description of at most 40; GitHub
    # answers 422 otherwise.
    ACTION_LIMITS = {"label": 20, "description": 40, "identifier": 20}
    MAX_ACTIONS = 3

    def _actions_refused(self, data: dict[str, Any]) -> str | None:
        """Why GitHub would refuse the buttons of a check-run write (None: it would not)."""
        found = data.get("actions", [])
        if not isinstance(found, list) or len(found) > self.MAX_ACTIONS:
            return f"actions: at most {self.MAX_ACTIONS}"
        for button in found:
            for key, limit in self.ACTION_LIMITS.items():
                value = button.get(key) if isinstance(button, dict) else None
                if not isinstance(value, str) or not value:
                    return f"actions: {key} is missing"
                if len(value) > limit:
                    return f"actions: {key} {value!r} is longer than {limit} characters"
        return None

    def _keep(
        self, repo: Repo, check: dict[str, Any], data: dict[str, Any], notes: list[dict[str, Any]]
    ) -> None:
        kept = repo.annotations.setdefault(check["id"], [])
        kept += notes
        check["output"] = {
            **check.get("output", {}),
            **data.get("output", {}),
            "annotations_count": len(kept),
        }
        check["output"].pop("annotations", None)  # GitHub serves them at .../annotations, not here

    async def _list_annotations(self, request: web.Request) -> web.Response:
        notes = self.repo(self._full(request)).annotations.get(int(request.match_info["id"]), [])
        return web.json_response(notes)

    async def _create_check_run(self, request: web.Request) -> web.Response:
        data = await request.json()
        notes = self._annotations(data)
        if isinstance(notes, str):
            return web.json_response({"message": f"Invalid request: {notes}"}, status=422)
        refused = self._actions_refused(data)
        if refused is not None:
            return web.json_response({"message": f"Invalid request: {refused}"}, status=422)
        body = self._shaped(
            request, "CheckRun_create_check_run", "POST", "/check-runs", "westphahl/github3.py"
        )
        check_id = self._new_id()
        body.update({k: v for k, v in data.items() if k != "output"})
        body.update(id=check_id, url=f"{self.url}/repos/{self._full(request)}/check-runs/{check_id}")
        body["app"] = self.app.app_body(self.url)  # the app whose installation wrote it
        repo = self.repo(self._full(request))
        repo.check_runs[check_id] = body
        self._keep(repo, body, data, notes)
        return web.json_response(body, status=201)

    async def _update_check_run(self, request: web.Request) -> web.Response:
        check = self.repo(self._full(request)).check_runs.get(int(request.match_info["id"]))
        if check is None or check["app"]["id"] != self.app.app_id:
            return web.json_response({"message": "Not Found"}, status=404)
        data = await request.json()
        notes = self._annotations(data)
        if isinstance(notes, str):
            return web.json_response({"message": f"Invalid request: {notes}"}, status=422)
        refused = self._actions_refused(data)
        if refused is not None:
            return web.json_response({"message": f"Invalid request: {refused}"}, status=422)
        check.update({k: v for k, v in data.items() if k != "output"})
        self._keep(self.repo(self._full(request)), check, data, notes)
        return web.json_response(check)

    # Deployments (https://docs.github.com/en/rest/deployments). A deployment exists only once the test
    # made it with ``add_deployment`` (GitHub creates them on request of a person or tool, not of Hamster).
    DEPLOYMENT_STATES = frozenset(
        {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
    )
    DEPLOYMENT_STATUS_URLS = ("log_url", "target_url", "environment_url")

    def add_deployment(
        self, repo: str, deployment_id: int, sha: str, ref: str, environment: str = "production"
    ) -> dict[str, Any]:
        """A deployment of ``repo`` as GitHub would hold it, shaped like the recorded one."""
        body = recorded(
            "Repository_deployment",
            "GET",
            "/deployments/797",
            "sigmavirus24/github3.py",
            repo,
            self.url,
        )
        body = json.loads(json.dumps(body).replace("/deployments/797", f"/deployments/{deployment_id}"))
        body.update(id=deployment_id, sha=sha, ref=ref, environment=environment)
        self.repo(repo).deployments[deployment_id] = body
        return body

    def deployment_statuses(self, repo: str, deployment_id: int) -> list[dict[str, Any]]:
        """The statuses of a deployment, oldest first."""
        return list(self.repo(repo).deployment_statuses.get(deployment_id, []))

    def _deployment_routes(self, app: web.Application, r: str) -> None:
        app.router.add_get(r + "/deployments/{id}", self._deployment)
        app.router.add_get(r + "/deployments/{id}/statuses", self._list_deployment_statuses)
        app.router.add_post(r + "/deployments/{id}/statuses", self._create_deployment_status)

    def _known_deployment(self, request: web.Request) -> dict[str, Any] | None:
        return self.repo(self._full(request)).deployments.get(int(request.match_info["id"]))

    async def _deployment(self, request: web.Request) -> web.Response:
        deployment = self._known_deployment(request)
        if deployment is None:
            return web.json_response({"message": "Not Found"}, status=404)
        return web.json_response(deployment)

    async def _list_deployment_statuses(self, request: web.Request) -> web.Response:
        if self._known_deployment(request) is None:
            return web.json_response({"message": "Not Found"}, status=404)
        statuses = self.deployment_statuses(self._full(request), int(request.match_info["id"]))
        return web.json_response(statuses[::-1])  # GitHub lists the newest first

    async def _create_deployment_status(self, request: web.Request) -> web.Response:
        deployment = self._known_deployment(request)
        if deployment is None:
            return web.json_response({"message": "Not Found"}, status=404)
        data = await request.json()
        if data.get("state") not in self.DEPLOYMENT_STATES:
            return web.json_response(
                {
                    "message": "Validation Failed",
                    "errors": [{"resource": "DeploymentStatus", "code": "invalid", "field": "state"}],
                },
                status=422,
            )
        if len(data.get("description") or "") > 140:
            return web.json_response({"message": "Validation Failed: description is too long"}, status=422)
        for name in self.DEPLOYMENT_STATUS_URLS:
            if name in data and not isinstance(data[name], str):  # GitHub's schema check: null too
                message = f"Invalid request.\n\nFor 'properties/{name}', {data[name]!r} is not a string."
                return web.json_response({"message": message}, status=422)
        body = self._shaped(
            request,
            "Deployment_create_status",
            "POST",
            "/deployments/801/statuses",
            "sigmavirus24/github3.py",
        )
        status_id = self._new_id()
        body = json.loads(json.dumps(body).replace("/deployments/801", f"/deployments/{deployment['id']}"))
        # "Setting log_url will automatically set target_url to the same value."
        url = data.get("log_url") or data.get("target_url") or ""
        body.update(
            id=status_id,
            url=f"{deployment['url']}/statuses/{status_id}",
            state=data["state"],
            description=data.get("description") or "",
            environment=data.get("environment") or deployment["environment"],
            target_url=url,
            log_url=url,
            environment_url=data.get("environment_url") or "",
        )
        self.repo(self._full(request)).deployment_statuses.setdefault(deployment["id"], []).append(body)
        return web.json_response(body, status=201)
