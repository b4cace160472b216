"""The reconciler stops when told, even as a change wakes it: at exit, and when its Lease is
lost (a reconciler that went on would be a second leader)."""

import asyncio

import pytest
from kubernetes_asyncio import client

from adroit.kube.controller import Controller
from tests.unit.sim import settings


def test_a_cancel_that_comes_with_a_change_stops_the_reconciler() -> None:
    async def cancelled_as_woken() -> None:
        api = client.ApiClient()
        try:
            controller = Controller(api, settings(), None)
            work = asyncio.create_task(controller._work())
            await asyncio.sleep(0.05)  # waiting for a change
            controller.enqueue("ads")  # a change comes ...
            work.cancel()  # ... as the operator is told to stop
            done, _ = await asyncio.wait([work], timeout=2)
            assert done, "the reconciler went on after it was cancelled"
            with pytest.raises(asyncio.CancelledError):
                work.result()
        finally:
            await api.close()

    asyncio.run(cancelled_as_woken())
