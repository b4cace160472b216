"""The reconciler's wiring: start the controller once settings are loaded, stop it at exit.

The controller (adroit.kube.controller) watches everything it reads; kopf
serves the admission webhook and runs startup and cleanup.
"""

import asyncio
import gc
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import kopf

from adroit.api.settings import Settings
from adroit.handlers.serving import Readiness
from adroit.handlers.stalls import Stalls
from adroit.kube.cluster import connect
from adroit.kube.controller import Controller
from adroit.kube.leader import Elector

BLOCKED = 0.05  # s: every watch and write of the reconciler waits meanwhile; longer is a bug
RESTART_AFTER = 5.0  # s before a reconciler that failed is started again
FREEZE_EVERY = 1.0  # s between two freezes of what survived the young collections
WHOLE_EVERY = 3600.0  # s between two collections of the whole heap, frozen part too, at rest
log = logging.getLogger("adroit.reconciler")


async def run(
    settings: Settings,
    key: bytes | None = None,
    stamps: bool = True,
    readiness: Readiness | None = None,
) -> None:
    """Reconcile until cancelled. `key` signs the trains the operator forms and verifies signed
    records; `stamps` is False when the webhook is off (then annotations alone count)."""
    # Trains are stepped in a worker thread, and the admission webhook has a thread of its
    # own. With Python's default 5 ms switch interval, a thread waits that long for the GIL
    # after each of its I/O calls while another computes; 1 ms keeps them quick.
    sys.setswitchinterval(0.001)
    api = await connect()
    watchdog = asyncio.create_task(Stalls(BLOCKED).watch(), name="adroit-loop-watchdog")
    running: list[Controller] = []  # none while another replica leads
    heap = asyncio.create_task(
        freeze_the_heap(lambda: not any(c.in_motion for c in running)), name="adroit-heap"
    )
    try:

        async def reconcile() -> None:
            controller = Controller(api, settings, key, stamps=stamps)
            running.append(controller)
            if readiness is not None:
                readiness.controller = controller
            try:
                await controller.run()
            finally:
                running.remove(controller)
                if readiness is not None:
                    readiness.controller = None

        while True:  # an error nothing below caught is said loudly, never a silent stop
            try:
                if settings.leader_election.enabled:
                    elector = Elector(api, settings.namespaces.control, settings.leader_election)
                    await elector.run(reconcile)
                else:
                    await reconcile()
                log.error("the reconciler ended; starting it again in %.0fs", RESTART_AFTER)
            except Exception:
                log.exception("the reconciler failed; starting it again in %.0fs", RESTART_AFTER)
            await asyncio.sleep(RESTART_AFTER)
    finally:
        watchdog.cancel()
        heap.cancel()
        await api.close()


async def freeze_the_heap(
    at_rest: Callable[[], bool], every: float = FREEZE_EVERY, whole_every: float = WHOLE_EVERY
) -> None:
    """Keep Python's full garbage collections short.

    The caches hold millions of objects at 2,000 flavors. A full collection scans all of
    them (more than 100 ms of CPU) and holds every thread meanwhile, the webhook's too.
    Every second, what survived the young generations' collections (a millisecond or
    two) is moved to the permanent generation, which collections skip: a full collection
    that Python starts by itself then scans a second's survivors. A full collection of
    ten seconds' survivors held the loop 60 to 90 ms in a rollout of 2,000 flavors.
    A reference cycle that becomes garbage after it was frozen (a request still in flight
    at the freeze) is reclaimed by a collection of the whole heap, once an hour when no
    train moves: after a rollout of 2,000 flavors it found 26,269 such objects, and held
    every thread 563 ms.
    """
    whole_at = time.monotonic() + whole_every
    while True:
        gc.freeze()  # costs nothing: the first one, at start, scans nothing either
        await asyncio.sleep(every)
        if time.monotonic() < whole_at or not at_rest():
            gc.collect(1)  # the young generations: what dies young is not frozen
            continue
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        log.info(
            "collected the whole heap at rest: %d unreachable objects, %.0f ms",
            found,
            (time.perf_counter() - started) * 1000,
        )
        whole_at = time.monotonic() + whole_every


def start(memo: kopf.Memo) -> None:
    """Start the controller; called at the end of the operator's startup."""
    key = memo.secrets.signing_key if getattr(memo, "secrets", None) else None
    stamps = memo.settings.admission.enabled
    readiness = getattr(memo, "readiness", None)
    memo.reconciler = asyncio.create_task(
        run(memo.settings, key, stamps, readiness), name="adroit-reconciler"
    )


async def restart(memo: kopf.Memo) -> None:
    """Stop the controller (its Lease is released) and start it with memo's settings."""
    task: asyncio.Task[None] | None = getattr(memo, "reconciler", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    start(memo)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for name in ("settings_follower", "reconciler"):
        task: asyncio.Task[None] | None = getattr(memo, name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    api = getattr(memo, "api", None)
    if api is not None:
        await api.close()
    for runner in getattr(memo, "serving", None) or ():
        await runner.cleanup()
