import asyncio
import logging
import time

import pytest

from adroit.handlers.stalls import Stalls


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a long computation on the loop does to everything else


async def free_then_held() -> None:
    watching = asyncio.create_task(Stalls(limit=0.05, every=0.02).watch())
    await asyncio.sleep(0.2)  # free: nothing to say
    hold_the_loop(0.3)
    await asyncio.sleep(0.1)
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)


def test_a_held_loop_is_said_once_with_how_long_and_where(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="adroit.reconciler")
    asyncio.run(free_then_held())
    (record,) = caplog.records
    message = record.getMessage()
    held = int(message.split("blocked for ")[1].split(" ms")[0])
    assert 250 <= held < 1000, message
    assert "hold_the_loop (unit/test_stalls.py:" in message, message
