"""Requests to the API server as the kubeconfig's user, for the plugin's short commands.

Plain http.client: one connection per thread, JSON in and out. A refused
request raises ApiError with the API server's own message (an admission
webhook's refusal included), for the person to read.
"""

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

from adroit.api import names
from adroit.tools.kubeconfig import Connection

MERGE = "application/merge-patch+json"
TIMEOUT = 30.0  # seconds, for every request but watches


def resource_path(namespace: str, plural: str, name: str | None = None) -> str:
    """The path of Adroit's resources (flavors, trains) and of the core kinds we read."""
    prefix = (
        f"/apis/{names.GROUP}/{names.VERSION}" if plural in ("flavors", "trains") else "/api/v1"
    )
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


class ApiError(Exception):
    """A request the API server answered with an error, or could not be sent."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason

    @classmethod
    def of(cls, status: int, text: str) -> "ApiError":
        try:
            body = json.loads(text)
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return cls(status, str(body.get("message") or text or status), str(body.get("reason", "")))


class Client:
    def __init__(self, connection: Connection, timeout: float = TIMEOUT) -> None:
        self.connection = connection
        self.timeout = timeout
        parts = urlsplit(connection.server)
        self._host, self._port = parts.hostname or "", parts.port
        self._base = parts.path.rstrip("/")
        self._https = parts.scheme == "https"
        self._local = threading.local()

    def _open(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self.connection.ssl
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        query: dict[str, Any] | None,
        body: Any,
        content_type: str,
    ) -> http.client.HTTPResponse:
        url = self._base + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        conn.putrequest(method, url, skip_accept_encoding=True)
        headers = [("Accept", "application/json"), ("User-Agent", "kubectl-adroit")]
        headers += list(self.connection.headers)
        if data is not None:
            headers += [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        for key, value in headers:
            conn.putheader(key, value)
        conn.endheaders(data)
        return conn.getresponse()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One request on this thread's connection; the decoded answer."""
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            reused = conn is not None
            if conn is None:
                conn = self._local.conn = self._open(self.timeout)
            try:
                response = self._send(conn, method, path, query, body, content_type)
                text = response.read().decode()
                break
            except (OSError, http.client.HTTPException) as error:
                self._local.conn = None
                conn.close()
                # A kept-alive connection the server closed meanwhile: open a new one, once.
                stale = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                if reused and attempt == 1 and isinstance(error, stale):
                    continue
                raise ApiError(0, f"cannot reach {self.connection.server}: {error}") from None
        if not 200 <= response.status < 300:
            raise ApiError.of(response.status, text)
        return dict(json.loads(text)) if text else {}

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.request("GET", path, query=query or None)

    def watch(self, path: str, resource_version: str) -> Iterator[dict[str, Any]]:
        """The events of a watch from `resource_version`, until the server ends it."""
        conn = self._open(None)
        try:
            query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "1"}
            response = self._send(conn, "GET", path, query, None, "")
            if response.status != 200:
                raise ApiError.of(response.status, response.read().decode())
            while line := response.readline():
                if line.strip():
                    yield json.loads(line)
        except (OSError, http.client.HTTPException) as error:
            raise ApiError(0, f"the watch of {path} broke: {error}") from None
        finally:
            conn.close()
