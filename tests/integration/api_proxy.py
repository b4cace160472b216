"""A TLS proxy in front of the API server that notes every request an operator makes, as
the RBAC verb, API group and resource the API server authorizes it as.

The operator reaches it as its in-cluster API server (KUBERNETES_SERVICE_HOST/PORT and
the proxy's certificate as the service account's ca.crt); the proxy passes each request
on with its Authorization header, so the API server authorizes the operator's own
identity, and streams the answer back (watches included).
"""

import asyncio
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from adroit.kube.secrets import self_signed

# Hop-by-hop headers (RFC 9110), and what aiohttp sets again itself.
HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


async def relay(
    session: aiohttp.ClientSession,
    upstream: str,
    request: web.Request,
    note: Callable[[int], None],
) -> web.StreamResponse:
    """Pass one request on to `upstream`, note the answer's status, and stream the answer
    back as it comes (a watch included)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    body = await request.read()
    async with session.request(
        request.method,
        upstream + request.raw_path,
        headers=headers,
        data=body or None,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
    ) as up:
        note(up.status)
        out = web.StreamResponse(
            status=up.status,
            headers={k: v for k, v in up.headers.items() if k.lower() not in HOP},
        )
        await out.prepare(request)
        async for chunk in up.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out


@dataclass(frozen=True)
class Access:
    verb: str  # as RBAC names it: get, list, watch, create, update, patch, delete, ...
    group: str  # "" for the core group
    resource: str  # with its subresource: "trains/status"
    namespace: str | None
    name: str | None
    status: int


def access(method: str, path: str, query: dict[str, str], status: int) -> list[Access]:
    """What RBAC sees in one request; none for non-resource paths (discovery, /version)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return []
    if not rest:
        return []
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name, sub = rest[0], rest[1] if len(rest) > 1 else None, rest[2:]
    if sub:
        resource += "/" + "/".join(sub)
    if method == "GET":
        verbs = ["watch" if query.get("watch") in ("1", "true") else "get" if name else "list"]
    elif method == "DELETE":
        verbs = ["delete" if name else "deletecollection"]
    else:
        verbs = [{"POST": "create", "PUT": "update", "PATCH": "patch"}[method]]
        if method == "PATCH" and status == 201:  # server-side apply that created the object
            verbs.append("create")
    return [Access(v, group, resource, namespace, name, status) for v in verbs]


@dataclass
class CountingProxy:
    upstream: str  # https://HOST:PORT of the API server
    upstream_ca: Path
    workdir: Path
    seen: list[Access] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        cert, key = self_signed(("127.0.0.1",))
        self.ca_file = self.workdir / "proxy-ca.crt"
        self.ca_file.write_bytes(cert)
        (self.workdir / "proxy.key").write_bytes(key)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(30)
        assert self.port, "the counting proxy did not start"

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        started.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        upstream_tls = ssl.create_default_context(cafile=str(self.upstream_ca))
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=upstream_tls, limit=0), auto_decompress=False
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        serving.load_cert_chain(self.ca_file, self.workdir / "proxy.key")
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=serving)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        def note(status: int) -> None:
            self.seen += access(request.method, request.path, dict(request.query), status)

        return await relay(self._session, self.upstream, request, note)

    def close(self) -> None:
        async def stop() -> None:
            await self._session.close()  # ends the watches it still streams
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
