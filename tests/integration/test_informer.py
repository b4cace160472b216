"""The controller's caches follow the API server through ended and broken watches, and
what they already hold is not delivered twice."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from kubernetes_asyncio import client

from adroit.kube import informer
from adroit.kube.cluster import connect
from adroit.kube.rest import KINDS, request
from tests.kube import NAMESPACE, kubectl, unique

Change = tuple[str | None, str | None]  # (old name, new name) as on_change saw them


@asynccontextmanager
async def services_followed() -> AsyncIterator[
    tuple[client.ApiClient, informer.Informer, list[Change]]
]:
    """An Informer of the test namespace's Services, synced, and every change it delivers."""
    api = await connect()
    seen: list[Change] = []

    def changed(old: dict | None, new: dict | None) -> None:
        seen.append((old and old["metadata"]["name"], new and new["metadata"]["name"]))

    cache = informer.Informer(api, "Service", NAMESPACE, on_change=changed)
    task = asyncio.create_task(cache.run())
    try:
        await asyncio.wait_for(cache.synced.wait(), 30)
        yield api, cache, seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await api.close()


async def until(check: Callable[[], bool]) -> None:
    """Wait up to 10 s for `check`."""
    for _ in range(100):
        if check():
            return
        await asyncio.sleep(0.1)


def test_a_watch_that_ends_resumes_without_losing_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(informer, "WATCH_SECONDS", 1)  # the server ends each watch after 1 s
    name = unique("svc")

    async def follow() -> list[Change]:
        async with services_followed() as (_, cache, seen):
            await asyncio.sleep(2.5)  # two watches have ended by now
            await asyncio.to_thread(
                kubectl, "create", "service", "clusterip", name, "--tcp=80:80", "-n", NAMESPACE
            )
            await until(lambda: name in cache.items)
            await asyncio.to_thread(kubectl, "delete", "service", name, "-n", NAMESPACE)
            await until(lambda: name not in cache.items)
            return seen

    seen = asyncio.run(follow())
    assert (None, name) in seen, "the creation after two ended watches was seen"
    assert (name, None) in seen, "and so was the deletion"


def test_a_write_the_cache_already_holds_is_not_delivered_again() -> None:
    """The reconciler puts what its writes return into the cache at once; the same version,
    coming back through the watch, is no change to plan again (for a 2,000-flavor rollout,
    every flavor planned twice per status write)."""
    ours, marker = unique("svc"), unique("svc")
    path = KINDS["Service"].path(NAMESPACE)

    async def follow() -> list[Change]:
        async with services_followed() as (api, cache, seen):
            try:
                for name in (ours, marker):
                    body = {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
                    written = await request(api, "POST", path, body=body)
                    if name == ours:
                        cache.remember(written)  # as the reconciler does with its writes
                # The watch has passed our write once it brings the marker.
                await until(lambda: marker in cache.items)
                return seen
            finally:
                for name in (ours, marker):
                    await request(api, "DELETE", f"{path}/{name}")

    seen = asyncio.run(follow())
    assert (None, marker) in seen
    assert seen.count((None, ours)) == 1, "our own write, delivered once"
    assert all(new != ours for old, new in seen if old == ours), "and not again as a change"
