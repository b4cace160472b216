"""The operator's API client honours HTTP(S)_PROXY as kubectl does, though it stops looking
at the environment on each request when no proxy variable or .netrc is set."""

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from adroit.kube.cluster import read_environment_once, whoami

PROXIES = ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy", "no_proxy")


@dataclass
class Proxy:
    port: int
    asked: list[str]


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A forward proxy that answers every request itself, and notes what it was asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked.append(self.path)  # a proxy is asked for the absolute URL
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps({"status": {"userInfo": {"username": "via-the-proxy"}}}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Proxy(server.server_address[1], asked)
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def ask(host: str) -> str:
    async def run() -> str:
        api = client.ApiClient(client.Configuration(host=host))
        read_environment_once(api)
        try:
            return await whoami(api)
        finally:
            await api.close()

    return asyncio.run(run())


def test_requests_go_through_the_proxy_the_environment_names(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    assert ask("http://api.cluster.invalid") == "via-the-proxy"
    assert proxy.asked == [
        "http://api.cluster.invalid/apis/authentication.k8s.io/v1/selfsubjectreviews"
    ]


def test_without_a_proxy_variable_requests_go_straight_to_the_server(proxy: Proxy) -> None:
    assert ask(f"http://127.0.0.1:{proxy.port}") == "via-the-proxy"
    assert proxy.asked == ["/apis/authentication.k8s.io/v1/selfsubjectreviews"]
