"""/metrics, /healthz and /readyz, on their own ports, as kubebuilder operators serve them.

`adroit run --metrics-bind-address :8080 --health-probe-bind-address :8081` (the
defaults; "0" turns one off). /healthz answers while the event loop runs;
/readyz once this replica can do its part: its admission webhook listens and,
while it leads, its caches are synced (a replica that stands by is ready: it
serves the webhook).
"""

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adroit.kube.metrics import REGISTRY

log = logging.getLogger("adroit.serving")


@dataclass
class Readiness:
    """What /readyz looks at; the wiring fills it in as the operator starts."""

    webhook: Any = None  # the WebhookServer, when admission is on
    controller: Any = None  # the Controller, while this replica leads

    def problems(self) -> list[str]:
        problems = []
        if self.webhook is not None and not getattr(self.webhook, "listening", False):
            problems.append("the admission webhook does not listen yet")
        if self.controller is not None and not all(
            i.synced.is_set() for i in self.controller.informers
        ):
            problems.append("the caches are not synced yet")
        return problems


def parse_address(text: str) -> tuple[str, int] | None:
    """':8080' (every interface), '127.0.0.1:8080', or '0' (off), as controller-runtime."""
    if text in ("0", ""):
        return None
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"{text!r} is not an address: write it like :8080 or 127.0.0.1:8080")
    return host or "0.0.0.0", int(port)


async def _metrics(_: aiohttp.web.Request) -> aiohttp.web.Response:
    body = generate_latest(REGISTRY)
    return aiohttp.web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _health(readiness: Readiness) -> aiohttp.web.Application:
    async def healthz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="ok")

    async def readyz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        problems = readiness.problems()
        if problems:
            return aiohttp.web.Response(status=503, text="; ".join(problems))
        return aiohttp.web.Response(text="ok")

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get("/healthz", healthz), aiohttp.web.get("/readyz", readyz)])
    return app


async def serve(
    metrics: tuple[str, int] | None, health: tuple[str, int] | None, readiness: Readiness
) -> list[aiohttp.web.AppRunner]:
    """Start what is asked for; the runners, to clean up at exit."""
    runners = []
    metrics_app = aiohttp.web.Application()
    metrics_app.add_routes([aiohttp.web.get("/metrics", _metrics)])
    for address, app, what in (
        (metrics, metrics_app, "metrics"),
        (health, _health(readiness), "health"),
    ):
        if address is None:
            continue
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await aiohttp.web.TCPSite(runner, *address, reuse_address=True).start()
        log.info("serving %s on %s:%s", what, *address)
        runners.append(runner)
    return runners
