"""`kubectl adroit dashboard`: the tracks live in a browser, on 127.0.0.1:3100.

Two watches (Flavors, Trains) keep the objects; every change is pushed to the
open pages as a server-sent event carrying the whole view of the tracks
(adroit.plan.tracks): no page polls, nothing is listed twice. The approve and
abort buttons write the annotations a person would, as the kubeconfig's user;
the dashboard holds no credentials of its own.

Only the local browser may use it: the server answers only requests whose Host
is its own loopback address (no DNS rebinding), and a write must come from the
page itself (its Origin) with the token that page was served with (no
cross-site request forgery).
"""

import asyncio
import contextlib
import hmac
import json
import secrets
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from functools import partial
from importlib.resources import files
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from adroit.api.settings import Settings
from adroit.plan.tracks import as_data
from adroit.tools.actions import ACTIONS, annotation_patch, refusal_hint
from adroit.tools.client import MERGE, ApiError, resource_path
from adroit.tools.kubeconfig import Connection
from adroit.tools.look import Cache, observe

PLURALS = ("flavors", "trains")
WATCH_SECONDS = 300  # the server ends each watch after this; it is started again from where it was


class Tracker:
    """The Flavors and Trains of one namespace, kept by watches; a new view on every change."""

    def __init__(self, http: aiohttp.ClientSession, server: str, namespace: str) -> None:
        self.http, self.server, self.namespace = http, server, namespace
        self.items: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in PLURALS}
        self.synced: set[str] = set()
        self.version = 0
        self.changed = asyncio.Condition()
        self.problem: str | None = None

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        async with self.http.request(method, self.server + path, **kwargs) as response:
            text = await response.text()
            if not 200 <= response.status < 300:
                raise ApiError.of(response.status, text)
            return dict(json.loads(text)) if text else {}

    def newer_than(self, version: int) -> bool:
        return self.version != version

    async def bump(self, problem: str | None = None) -> None:
        async with self.changed:
            self.problem = problem
            self.version += 1
            self.changed.notify_all()

    async def follow(self, plural: str) -> None:
        """List once, then watch from there; list again only when the watch is too old."""
        path = resource_path(self.namespace, plural)
        version: str | None = None
        while True:
            try:
                if version is None:
                    listed = await self.request("GET", path)
                    self.items[plural] = {i["metadata"]["name"]: i for i in listed["items"]}
                    version = listed["metadata"]["resourceVersion"]
                    self.synced.add(plural)
                    await self.bump()
                version = await self._watch(plural, path, version)
            except ApiError as error:
                version = None if error.status == 410 else version
                await self.bump(f"watching {plural}: {error.message}")
                await asyncio.sleep(2)
            except (aiohttp.ClientError, TimeoutError) as error:
                await self.bump(f"watching {plural}: {error}")
                await asyncio.sleep(2)

    async def _watch(self, plural: str, path: str, version: str) -> str | None:
        """Keep the items as one watch tells; the version to go on from (None: list again)."""
        async with contextlib.aclosing(self._events(path, version)) as events:
            async for event in events:
                obj = event.get("object") or {}
                kind = event.get("type")
                if kind == "ERROR":
                    return None if obj.get("code") == 410 else version
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if kind == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                if kind == "DELETED":
                    self.items[plural].pop(name, None)
                else:
                    self.items[plural][name] = obj
                await self.bump()
        return version

    async def _events(self, path: str, version: str) -> AsyncGenerator[dict[str, Any], None]:
        query = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WATCH_SECONDS + 30)
        async with self.http.get(self.server + path, params=query, timeout=timeout) as response:
            if response.status != 200:
                raise ApiError.of(response.status, await response.text())
            buffer = b""
            # Lines may be megabytes (a train of 2,000 cars): no line-length limit here.
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)


class Dashboard:
    def __init__(
        self,
        tracker: Tracker,
        settings: Settings | None,
        who: str,
        context: str,
        hosts: set[str],
    ) -> None:
        self.tracker, self.settings, self.who, self.context = tracker, settings, who, context
        self.hosts = hosts
        self.token = secrets.token_urlsafe(32)
        self._view: tuple[int, bytes] = (-1, b"")
        self._read: Cache = {}

    def view(self) -> bytes:
        """The view of the tracks as one event's data, computed once per change."""
        version = self.tracker.version
        if self._view[0] != version:
            items = self.tracker.items
            flavors, trains = items["flavors"].values(), items["trains"].values()
            observed = observe(flavors, trains, datetime.now(UTC), self._read, pending_only=True)
            data = {
                "tracks": as_data(observed.look(self.settings)),
                "synced": len(self.tracker.synced) == len(PLURALS),
                "problem": self.tracker.problem,
                "unreadable": list(observed.unreadable),
            }
            self._view = (version, json.dumps(data).encode())
        return self._view[1]

    # --- who may ask ---------------------------------------------------------

    def _own_host(self, request: web.Request) -> None:
        if request.headers.get("Host", "") not in self.hosts:
            raise web.HTTPForbidden(text="this dashboard answers only on its own address\n")

    def _same_origin_write(self, request: web.Request) -> None:
        self._own_host(request)
        origin = request.headers.get("Origin", "")
        if origin.removeprefix("http://") not in self.hosts:
            raise web.HTTPForbidden(text="cross-origin requests are refused\n")
        if request.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
            raise web.HTTPForbidden(text="cross-site requests are refused\n")
        token = request.headers.get("X-Adroit-Token", "")
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            raise web.HTTPForbidden(text="missing or wrong session token: reload the page\n")

    # --- handlers ---------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        self._own_host(request)
        html = files("adroit.tools").joinpath("dashboard.html").read_text()
        html = html.replace("{{TOKEN}}", self.token).replace("{{WHO}}", _escape(self.who))
        html = html.replace("{{CONTEXT}}", _escape(self.context))
        html = html.replace("{{NAMESPACE}}", _escape(self.tracker.namespace))
        return web.Response(
            text=html,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                "style-src 'unsafe-inline'; frame-ancestors 'none'",
                "X-Frame-Options": "DENY",
            },
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the whole view now, then again after every change."""
        self._own_host(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        tracker, sent = self.tracker, -1
        while True:
            async with tracker.changed:
                await tracker.changed.wait_for(partial(tracker.newer_than, sent))
            sent = tracker.version
            await response.write(b"event: tracks\ndata: " + self.view() + b"\n\n")
            await asyncio.sleep(0.1)  # a burst of changes is sent once

    async def act(self, request: web.Request) -> web.Response:
        self._same_origin_write(request)
        action, train = request.match_info["action"], request.match_info["train"]
        if action not in ACTIONS:
            raise web.HTTPNotFound(text=f"no action {action}\n")
        path = resource_path(self.tracker.namespace, "trains", train)
        try:
            await self.tracker.request(
                "PATCH",
                path,
                data=json.dumps(annotation_patch(action)),
                headers={"Content-Type": MERGE},
            )
        except ApiError as error:
            hint = refusal_hint(action, error, self.tracker.namespace, train)
            return web.json_response(
                {"ok": False, "status": error.status, "message": error.message, "hint": hint},
                status=422,
            )
        return web.json_response(
            {"ok": True, "message": f"train/{train} annotated {ACTIONS[action]}=true as {self.who}"}
        )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


async def whoami(tracker: Tracker) -> str:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        answer = await tracker.request(
            "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review
        )
    except (ApiError, aiohttp.ClientError):
        return "the kubeconfig's user"
    return str(answer.get("status", {}).get("userInfo", {}).get("username") or "?")


def _ticks(dashboard: Dashboard) -> None:
    """Draw again when the deploy window opens or closes (a known instant, not a poll)."""
    tracker = dashboard.tracker
    loop = asyncio.get_running_loop()
    ticking: set[asyncio.Future[None]] = set()

    def schedule() -> None:
        data = json.loads(dashboard.view())
        window = data["tracks"]["window"]
        at = window.get("closesAt") or window.get("opensAt")
        if at:
            moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
            delay = min(max((moment - datetime.now(UTC)).total_seconds() + 1, 1), 86400)
            loop.call_later(delay, tick)

    def tick() -> None:
        ticking.add(task := asyncio.ensure_future(tracker.bump()))
        task.add_done_callback(ticking.discard)
        schedule()

    schedule()


async def run(
    connection: Connection, namespace: str, settings: Settings | None, address: str, port: int
) -> None:
    connector = aiohttp.TCPConnector(ssl=connection.ssl if connection.ssl else False)
    headers = CIMultiDict([*connection.headers, ("User-Agent", "kubectl-adroit-dashboard")])
    async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
        tracker = Tracker(http, connection.server, namespace)
        who = await whoami(tracker)
        hosts = {f"{address}:{port}", f"127.0.0.1:{port}", f"localhost:{port}"}
        dashboard = Dashboard(tracker, settings, who, connection.context, hosts)
        app = web.Application()
        app.router.add_get("/", dashboard.page)
        app.router.add_get("/events", dashboard.events)
        app.router.add_post("/api/trains/{train}/{action}", dashboard.act)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, address, port).start()
        print(
            f"Adroit dashboard: http://{address}:{port}/ (acting as {who}, context "
            f"{connection.context}, namespace {namespace}); Ctrl-C stops it",
            flush=True,
        )
        watches = [asyncio.create_task(tracker.follow(p)) for p in PLURALS]
        _ticks(dashboard)
        try:
            await asyncio.Event().wait()
        finally:
            for task in watches:
                task.cancel()
            await runner.cleanup()


def serve(
    connection: Connection, namespace: str, settings: Settings | None, address: str, port: int
) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(connection, namespace, settings, address, port))
    return 0
