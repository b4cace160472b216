"""The reconciler: read the world, ask adroit.plan what it should be, make it so; repeat.

One loop for the whole control namespace, because "one train on the tracks"
is a property of all trains together. It runs on every Flavor or Train event
kopf sees, and every poll interval for what it cannot watch (Deployments
becoming Available, the clock reaching a window or a timeout).
"""

import asyncio
import datetime as dt
import logging
from typing import Any

import aiohttp
import kopf
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api.names import GROUP, VERSION
from adroit.api.settings import Settings
from adroit.kube.act import carry_out
from adroit.kube.cluster import connect
from adroit.kube.read import read_world
from adroit.plan.reconcile import reconcile

log = logging.getLogger("adroit.reconciler")
MAX_BACKOFF = 10.0  # a train should not wait long after the API server is back


async def run(settings: Settings, wakeup: asyncio.Event, key: bytes | None = None) -> None:
    """Reconcile until cancelled. `key` verifies signed approvals (None: the webhook is off)."""
    api = await connect()
    backoff = 0.0
    try:
        while True:
            wakeup.clear()
            try:
                world = await read_world(api, settings, dt.datetime.now(dt.UTC), key)
                plan = reconcile(world, settings)
                await carry_out(api, plan, world, settings)
                backoff = 0.0
            except (ApiException, aiohttp.ClientError, TimeoutError) as error:
                backoff = min(MAX_BACKOFF, backoff * 2 or 1.0)
                reason = getattr(error, "reason", None) or error
                log.warning("API error (%s); trying again in %.0fs", reason, backoff)
            except Exception:
                # A bug must not stop every train: say so loudly, and keep going.
                backoff = min(MAX_BACKOFF, backoff * 2 or 1.0)
                log.exception("reconciling failed; trying again in %.0fs", backoff)
            pause = backoff or settings.timeouts.poll_interval.total_seconds()
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=pause)
                if backoff:
                    await asyncio.sleep(backoff)
            except TimeoutError:
                pass
    finally:
        await api.close()


def start(memo: kopf.Memo) -> None:
    """Start the loop; called at the end of the operator's startup, once settings are loaded."""
    memo.wakeup = asyncio.Event()
    key = memo.secrets.signing_key if getattr(memo, "secrets", None) else None
    memo.reconciler = asyncio.create_task(
        run(memo.settings, memo.wakeup, key), name="adroit-reconciler"
    )


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = getattr(memo, "reconciler", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    api = getattr(memo, "api", None)
    if api is not None:
        await api.close()


@kopf.on.event(GROUP, VERSION, "flavors")
@kopf.on.event(GROUP, VERSION, "trains")
async def wake(memo: kopf.Memo, **_: Any) -> None:
    wakeup: asyncio.Event | None = getattr(memo, "wakeup", None)
    if wakeup is not None:
        wakeup.set()
