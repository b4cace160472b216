"""make bench-scale's own API client: a request the API server was too busy for is sent
again when sending it twice is harmless, so a long run does not die on one 504."""

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))  # its scripts import each other
scale = importlib.import_module("scale")


def _calls(method: str, busy: int, **kw: Any) -> tuple[list[str], Any]:
    """Send one request to a server that answers 504 `busy` times, then 200."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.method)
        if len(seen) <= busy:
            return web.json_response(
                {"reason": "Timeout"}, status=504, headers={"Retry-After": "0"}
            )
        return web.json_response({"kind": "Deployment"})

    async def run() -> Any:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        kube = object.__new__(scale.Kube)
        kube.server, kube.headers, kube.ssl, kube._session = (
            f"http://127.0.0.1:{port}",
            {},
            False,
            None,
        )
        try:
            return await kube.call(method, "/apis/apps/v1/deployments", {}, **kw)
        finally:
            await kube.close()
            await runner.cleanup()

    try:
        return seen, asyncio.run(run())
    except scale.ApiError as error:
        return seen, error


def test_a_busy_api_server_is_asked_again_for_what_may_be_sent_twice() -> None:
    seen, answer = _calls("PATCH", busy=2, ctype="application/apply-patch+yaml")
    assert (seen, answer) == (["PATCH"] * 3, {"kind": "Deployment"})
    seen, answer = _calls("GET", busy=1)
    assert (seen, answer) == (["GET"] * 2, {"kind": "Deployment"})


def test_a_create_or_a_probe_is_sent_once_and_its_answer_counts() -> None:
    seen, answer = _calls("POST", busy=1)
    assert (seen, answer.status) == (["POST"], 504)
    seen, answer = _calls("PATCH", busy=1, ctype="application/merge-patch+json", retries=0)
    assert (seen, answer.status) == (["PATCH"], 504)


def test_a_server_busy_for_longer_than_the_retries_is_an_error() -> None:
    seen, answer = _calls("GET", busy=scale.RETRIES + 1)
    assert (len(seen), answer.status) == (scale.RETRIES + 1, 504)
