import asyncio
import gc
import weakref

import pytest

from adroit.handlers.reconciler import freeze_the_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the garbage collector reclaims it


def cycle_frozen_then_dropped(at_rest: bool) -> bool:
    """A request's objects in flight at a freeze, garbage afterwards: reclaimed?"""

    async def run() -> bool:
        node = Node()
        gone = weakref.ref(node)
        heap = asyncio.create_task(freeze_the_heap(lambda: at_rest, every=0.01, whole_every=0.1))
        await asyncio.sleep(0.05)  # frozen with everything else alive now
        del node
        await asyncio.sleep(0.3)
        heap.cancel()
        await asyncio.gather(heap, return_exceptions=True)
        return gone() is None

    try:
        return asyncio.run(run())
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("at_rest", [True, False])
def test_a_cycle_frozen_while_alive_is_reclaimed_at_rest_not_while_trains_move(
    at_rest: bool,
) -> None:
    assert cycle_frozen_then_dropped(at_rest) is at_rest
