"""Watch-fed caches: list once, then follow a watch, as client-go's informers do.

Each Informer keeps one kind in one namespace (optionally by label) in memory,
transformed into what the reconciler needs (managedFields and the like are
dropped at once), and calls `on_change(old, new)` for every change. A watch
that ends, times out or breaks resumes from the last resourceVersion it saw;
one the server no longer has (410 Gone) lists again. A kind whose CRD is not
installed is looked for again every minute and is an empty cache meanwhile.
"""

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.kube.metrics import API_REQUESTS
from adroit.kube.rest import KINDS, request

log = logging.getLogger("adroit.informer")
WATCH_SECONDS = 300  # the server ends each watch after this; we start the next one
PAGE = 500
ABSENT_RETRY = 60.0
GONE_KEPT = 4096  # deletions remembered against late answers (seconds' worth at most)
MAX_BACKOFF = 10.0
# Events that arrived together are read without the loop ever waiting; after this much
# work the informer lets the webhook and the other watches in.
SLICE = 0.005
# A watch event this long is first read only as far as its metadata: when it is a version the
# cache holds (the echo of a write of ours, already remembered), the rest is never decoded.
# A Train of 2,000 cars is 489 KB, and decoding it takes milliseconds of the loop.
PEEK_BYTES = 64 * 1024
# The start of an event whose object begins with its metadata: the API server writes
# apiVersion and kind first, as strings with no escapes, so this anchors on the object's own.
_HEAD = re.compile(
    rb'\{"type":"(?:ADDED|MODIFIED)","object":\{(?:"(?:apiVersion|kind)":"[^"\\]*",){0,2}'
    rb'"metadata":'
)
_DECODER = json.JSONDecoder()

Transform = Callable[[dict[str, Any]], Any]
OnChange = Callable[[Any, Any], None]


def trimmed(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what no reconciler reads (managedFields are most of its bytes)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    return {**obj, "metadata": meta}


def _version(rv: str | None) -> int:
    """A resourceVersion as a number, to tell a later one (etcd's revisions are numbers)."""
    try:
        return int(rv or "")
    except ValueError:
        return 0


async def _yield_after(since: float) -> float:
    """Let the loop run other tasks once `SLICE` has passed since `since`: a readline from
    a buffer that already holds the next event returns without ever giving the loop up."""
    now = time.monotonic()
    if now - since < SLICE:
        return since
    await asyncio.sleep(0)
    return time.monotonic()


class Informer:
    def __init__(
        self,
        api: client.ApiClient,
        kind: str,
        namespace: str,
        *,
        labels: str | None = None,
        transform: Transform = trimmed,
        on_change: OnChange | None = None,
    ) -> None:
        self.api, self.kind, self.namespace, self.labels = api, kind, namespace, labels
        self.transform = transform
        self.on_change = on_change or (lambda old, new: None)
        self.items: dict[str, Any] = {}
        self.versions: dict[str, str] = {}  # name -> resourceVersion of what items holds
        self.synced = asyncio.Event()
        self.absent = False  # the kind is not served (its CRD is not installed)
        self.resource_version = ""
        self.gone: dict[str, str] = {}  # name -> resourceVersion it was seen deleted at

    def __repr__(self) -> str:
        return f"Informer({self.kind} in {self.namespace})"

    @property
    def path(self) -> str:
        return KINDS[self.kind].path(self.namespace)

    def _query(self, **more: Any) -> dict[str, Any]:
        query = {k: v for k, v in more.items() if v is not None}
        if self.labels:
            query["labelSelector"] = self.labels
        return query

    def _store(self, name: str, obj: dict[str, Any] | None) -> None:
        old = self.items.get(name)
        if obj is None:
            if name not in self.items:
                return
            del self.items[name]
            self.versions.pop(name, None)
            new = None
        else:
            try:
                new = self.transform(obj)
            except Exception:  # one unreadable object must not stop the cache
                log.exception("%s: cannot read %s; leaving it out", self, name)
                self._store(name, None)
                return
            self.items[name] = new
            self.versions[name] = obj["metadata"].get("resourceVersion", "")
            self.gone.pop(name, None)
        self.on_change(old, new)

    def _holds(self, name: str, rv: str) -> bool:
        """Whether the cache holds this version of `name` or a later one, or has seen it
        deleted since."""
        held = self.versions.get(name, self.gone.get(name))
        return held is not None and (held == rv or _version(held) > _version(rv))

    def remember(self, obj: dict[str, Any]) -> None:
        """Put what a write of ours returned into the cache at once, unless the cache already
        holds that version or a later one (the watch may bring it first), so nothing plans
        again on what it just wrote."""
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if name and not self._holds(name, meta.get("resourceVersion", "")):
            self._store(name, obj)

    async def _list(self) -> None:
        seen: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            page = await request(
                self.api, "GET", self.path, query=self._query(limit=PAGE, **{"continue": token})
            )
            for item in page.get("items") or []:
                seen[item["metadata"]["name"]] = item
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                self.resource_version = page["metadata"]["resourceVersion"]
                break
        for name in [n for n in self.items if n not in seen]:
            self._bury(name, self.resource_version)
            self._store(name, None)
        since = time.monotonic()
        for name, item in seen.items():
            if self.versions.get(name) != item["metadata"].get("resourceVersion"):
                self._store(name, item)
            since = await _yield_after(since)

    async def _watch(self) -> None:
        query = self._query(
            watch="true",
            resourceVersion=self.resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=WATCH_SECONDS,
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=WATCH_SECONDS + 30)
        response = await self.api.call_api(
            self.path,
            "GET",
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=timeout,
        )
        API_REQUESTS.labels("WATCH", str(response.status)).inc()
        try:
            if response.status != 200:
                error = ApiException(status=response.status, reason=response.reason)
                error.body = await response.text()
                raise error
            since = time.monotonic()
            while line := await response.content.readline():
                since = await _yield_after(since)
                self._line(line)
        finally:
            response.release()

    def _line(self, line: bytes) -> None:
        """One line of the watch: one event, decoded only when the cache needs it."""
        if len(line) >= PEEK_BYTES and (head := _HEAD.match(line)):
            try:
                meta, _ = _DECODER.raw_decode(line.decode(), head.end())
                name, rv = meta["name"], meta["resourceVersion"]
            except (ValueError, KeyError, TypeError):
                pass  # not what it looked like: decoded whole below
            else:
                if isinstance(rv, str) and self._holds(name, rv):
                    self.resource_version = rv
                    return
        self._event(json.loads(line))

    def _event(self, event: dict[str, Any]) -> None:
        """One event of the watch."""
        kind, obj = event["type"], event["object"]
        if kind == "ERROR":
            raise ApiException(status=int(obj.get("code", 500)), reason=obj.get("message"))
        self.resource_version = obj["metadata"]["resourceVersion"]
        if kind == "BOOKMARK":
            return
        name, rv = obj["metadata"]["name"], self.resource_version
        if kind == "DELETED":
            if _version(self.versions.get(name)) <= _version(rv):  # else: created again since
                self._bury(name, rv)
                self._store(name, None)
        elif not self._holds(name, rv):  # else: a write of ours, already in (remember)
            self._store(name, obj)

    def _bury(self, name: str, rv: str) -> None:
        """Remember that `name` was gone at `rv`: the late answer to a write of ours from
        before is not the object come back."""
        self.gone.pop(name, None)
        self.gone[name] = rv
        if len(self.gone) > GONE_KEPT:
            del self.gone[next(iter(self.gone))]

    async def run(self) -> None:
        """List, then watch for ever; cancel the task to stop."""
        backoff = 0.0
        listed = False
        while True:
            try:
                if not listed:
                    await self._list()
                    listed, self.absent = True, False
                    self.synced.set()
                await self._watch()
                backoff = 0.0
            except ApiException as error:
                if error.status == 410:  # too old: the server compacted past our version
                    listed = False
                    continue
                if error.status == 404 and not listed:  # the kind is not served here
                    if not self.absent:
                        log.warning("%s: not served by this API server; looking again later", self)
                    self.absent = True
                    self.synced.set()
                    await asyncio.sleep(ABSENT_RETRY)
                    continue
                backoff = min(MAX_BACKOFF, backoff * 2 or 0.5)
                log.warning("%s: %s %s; again in %.1fs", self, error.status, error.reason, backoff)
                await asyncio.sleep(backoff)
            except (aiohttp.ClientError, TimeoutError, ConnectionError, ValueError) as error:
                backoff = min(MAX_BACKOFF, backoff * 2 or 0.5)
                log.warning("%s: watch broke (%r); again in %.1fs", self, error, backoff)
                await asyncio.sleep(backoff)
            except Exception:  # anything else (a bug, a line too long): never a dead cache
                backoff = min(MAX_BACKOFF, backoff * 2 or 0.5)
                log.exception("%s: watch failed; listing again in %.1fs", self, backoff)
                listed = False
                await asyncio.sleep(backoff)
