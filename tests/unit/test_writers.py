"""A wake-up with many flavors to look at: a bounded number of them at once, by as many
tasks. (A task made for each of 2,000 flavors is one step of 10 ms that holds the event
loop, the watches' and the writes' with it: `make bench-snapshot` prints the longest step.)"""

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client

from adroit.kube.controller import WRITERS, Controller, at_most
from tests.unit.sim import settings


def test_a_wake_up_for_many_flavors_works_on_a_few_at_once_by_a_few_tasks() -> None:
    async def wake_up() -> None:
        api = client.ApiClient()
        try:
            controller = Controller(api, settings(), None)
            world = controller.world(controller.caches())
            seen: list[str] = []
            in_flight = most_in_flight = most_tasks = 0

            async def written(name: str, _: Any) -> None:
                nonlocal in_flight, most_in_flight, most_tasks
                seen.append(name)
                in_flight += 1
                most_in_flight = max(most_in_flight, in_flight)
                most_tasks = max(most_tasks, len(asyncio.all_tasks()))
                await asyncio.sleep(0.001)  # a write's round trip
                in_flight -= 1

            controller._flavor = written  # type: ignore[method-assign]
            keys = {f"flavor-{i:04d}" for i in range(500)}
            await controller._batch(keys, world)
            assert seen == sorted(keys)  # each once, in order
            assert most_in_flight == WRITERS
            assert most_tasks <= WRITERS + 1, f"{most_tasks} tasks for {len(keys)} flavors"
        finally:
            await api.close()

    asyncio.run(wake_up())


def test_an_error_in_one_item_is_raised_and_the_others_are_done() -> None:
    async def with_a_failure() -> None:
        done: list[int] = []

        async def work(item: int) -> None:
            await asyncio.sleep(0)
            if item == 3:
                raise ValueError("item 3")
            done.append(item)

        with pytest.raises(ValueError, match="item 3"):
            await at_most(4, range(20), work)
        for _ in range(50):  # the other tasks go on
            await asyncio.sleep(0)
        assert sorted(done) == [i for i in range(20) if i != 3]

    asyncio.run(with_a_failure())
