import asyncio
import logging
import time

import pytest

from adroit.handlers.stalls import Stalls


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a long computation on the loop does to everything else


async def held_inside() -> None:
    hold_the_loop(0.3)
    await asyncio.sleep(0.1)


async def free_then_held() -> None:
    watching = asyncio.create_task(Stalls(limit=0.05, every=0.02).watch())
    await asyncio.sleep(0.2)  # free: nothing to say
    await held_inside()
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)


def test_a_held_loop_is_said_with_how_long_and_where(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adroit.reconciler")
    asyncio.run(free_then_held())
    step, blocked = sorted(r.getMessage() for r in caplog.records)
    assert blocked.startswith("the event loop was blocked for "), blocked
    assert 250 <= milliseconds(blocked, "blocked for ") < 1000, blocked
    assert "held in: hold_the_loop (unit/test_stalls.py:11) < held_inside (" in blocked, blocked
    # The step: the innermost coroutine that ran it, where it waited next.
    assert step.startswith("one step of the event loop took "), step
    assert 250 <= milliseconds(step, "took ") < 1000, step
    assert "held_inside (unit/test_stalls.py:16)" in step, step


def milliseconds(message: str, after: str) -> int:
    return int(message.split(after)[1].split(" ms")[0])
