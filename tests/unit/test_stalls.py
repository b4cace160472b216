import asyncio
import gc
import logging
import time

import pytest

from adroit.handlers.stalls import Stalls


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # what a long computation on the loop does to everything else


async def held_inside() -> None:
    hold_the_loop(0.3)
    await asyncio.sleep(0.1)


async def held_to_the_end() -> None:
    hold_the_loop(0.3)


async def free_then_held(in_a_task: bool) -> None:
    watching = asyncio.create_task(Stalls(limit=0.05, every=0.02).watch())
    await asyncio.sleep(0.2)  # free: nothing to say
    if in_a_task:  # a task held from its first step to its end
        await asyncio.create_task(held_to_the_end())
        await asyncio.sleep(0.1)
    else:
        await held_inside()
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)


@pytest.mark.parametrize("in_a_task", [False, True], ids=["awaited", "a-new-task"])
def test_a_held_loop_is_said_with_how_long_and_where(
    caplog: pytest.LogCaptureFixture, in_a_task: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="adroit.reconciler")
    asyncio.run(free_then_held(in_a_task))
    step, blocked = sorted(r.getMessage() for r in caplog.records)
    assert blocked.startswith("the event loop was blocked for "), blocked
    assert 250 <= milliseconds(blocked, "blocked for ") < 1000, blocked
    sleeping = hold_the_loop.__code__.co_firstlineno + 1
    held = "held_to_the_end" if in_a_task else "held_inside"
    assert f"held in: hold_the_loop (unit/test_stalls.py:{sleeping}) < {held} (" in blocked
    # The step: the innermost coroutine that ran it, where it waited next.
    assert step.startswith("one step of the event loop took "), step
    assert 250 <= milliseconds(step, "took ") < 1000, step
    assert milliseconds(step, "its thread ran ") < 50, step  # it slept: it waited, not ran
    if in_a_task:  # it ended in that step: where it begins
        begins = held_to_the_end.__code__.co_firstlineno
        assert f"held_to_the_end (unit/test_stalls.py:{begins}), which ended" in step, step
    else:
        awaiting = held_inside.__code__.co_firstlineno + 2
        assert f"held_inside (unit/test_stalls.py:{awaiting})" in step, step


def compute(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


async def computed() -> None:
    watching = asyncio.create_task(Stalls(limit=0.05, every=0.02).watch())
    await asyncio.sleep(0.1)
    compute(0.3)
    await asyncio.sleep(0.1)
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)


def test_a_step_says_how_much_of_it_its_thread_ran(caplog: pytest.LogCaptureFixture) -> None:
    """A step that computed ran on the CPU; one that waited (test above) did not: the
    difference between the operator's own work and a machine busy with something else."""
    caplog.set_level(logging.WARNING, logger="adroit.reconciler")
    asyncio.run(computed())
    step = next(r.getMessage() for r in caplog.records if "one step" in r.getMessage())
    assert milliseconds(step, "its thread ran ") >= 250, step
    assert milliseconds(step, "its thread ran ") <= milliseconds(step, "took "), step


def milliseconds(message: str, after: str) -> int:
    return int(message.split(after)[1].split(" ms")[0])


async def held_by_a_collection() -> None:
    watching = asyncio.create_task(Stalls(limit=0.05, every=0.02).watch())
    await asyncio.sleep(0.1)
    cycles = []
    for _ in range(300_000):
        node: list[object] = []
        node.append(node)  # a cycle: the collector has to look at each
        cycles.append(node)
    held = time.perf_counter()
    while time.perf_counter() - held < 0.1:  # collections long enough to be said
        gc.collect()
    del cycles
    await asyncio.sleep(0.1)
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)


def test_a_loop_held_by_garbage_collections_says_so(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adroit.reconciler")
    asyncio.run(held_by_a_collection())
    blocked = [r.getMessage() for r in caplog.records if "blocked for" in r.getMessage()]
    assert blocked, [r.getMessage() for r in caplog.records]
    assert "garbage collection of generation 2: " in blocked[0], blocked[0]
    # The step that ran them says how much of it they took.
    step = next(r.getMessage() for r in caplog.records if "one step" in r.getMessage())
    assert milliseconds(step, "; garbage collection ") >= 50, step
