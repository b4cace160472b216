"""An object something else keeps changing is put back at most LIMIT times a WINDOW."""

import asyncio
import time
from typing import Any

from kubernetes_asyncio import client

from adroit.api.conditions import ConditionStatus
from adroit.kube.controller import Controller
from adroit.plan.contest import LIMIT, WINDOW, Contests
from adroit.plan.converge import Writes
from adroit.plan.flavors import flavor_status
from adroit.plan.stages import Stage
from adroit.plan.world import Managed
from tests.unit.sim import Sim, settings, spec
from tests.unit.test_trains import deployed

KEY = ("ads", Stage.PRODUCTION, "Deployment", "ads-1")
KEY_PDB = ("ads", Stage.PRODUCTION, "PodDisruptionBudget", "ads")


def hold(contests: Contests, now: float) -> float | None:
    """As the reconciler does: wait, or put back (and count it)."""
    wait = contests.wait(KEY, now)
    if wait is None:
        contests.put_back([KEY], now)
    return wait


def test_the_sixth_repair_within_a_window_waits_for_the_first_to_age() -> None:
    contests = Contests()
    for second in range(LIMIT):
        assert hold(contests, now=float(second)) is None, "put back at once"
    assert contests.contested("ads", Stage.PRODUCTION, now=LIMIT - 1.0) is not None
    assert hold(contests, now=10.0) == WINDOW - 10.0, "held until the first is old"
    assert hold(contests, now=WINDOW) is None, "then it goes"
    assert hold(contests, now=WINDOW + 0.5) == 0.5, "and the next waits for the second"
    why = contests.contested("ads", Stage.PRODUCTION, now=WINDOW + 0.5)
    assert why is not None
    message, left = why
    assert "Deployment ads-1 in production was put back 5 times within 60 s" in message
    assert left == 0.5
    assert contests.contested("ads", Stage.STAGING, now=WINDOW) is None, "another stage"
    assert contests.contested("ads", Stage.PRODUCTION, now=3 * WINDOW) is None, "it ends"


def test_repairs_spread_out_are_never_held() -> None:
    contests = Contests()
    for minute in range(3 * LIMIT):
        assert hold(contests, now=minute * WINDOW / 2) is None


def test_a_contested_flavor_is_not_ready_and_says_why() -> None:
    sim = Sim()
    deployed(sim)
    world = sim.world()
    view = world.flavors["ads"]
    ready = {c.type: c for c in flavor_status(view, world).conditions}["Ready"]
    assert ready.status == ConditionStatus.TRUE
    status = flavor_status(view, world, {Stage.PRODUCTION: "Deployment ads-1 was put back"})
    ready = {c.type: c for c in status.conditions}["Ready"]
    assert (ready.status, ready.reason) == (ConditionStatus.FALSE, "Contested")
    assert ready.message == "Deployment ads-1 was put back"


def test_a_contest_is_said_while_a_change_waits_too() -> None:
    sim = Sim()
    deployed(sim)
    sim.apply_flavor("ads", spec("v2"))  # production still runs v1
    world = sim.world()
    status = flavor_status(world.flavors["ads"], world, {Stage.PRODUCTION: "put back 5 times"})
    ready = {c.type: c for c in status.conditions}["Ready"]
    assert (ready.reason, ready.message) == ("Contested", "put back 5 times")


def manifest(kind: str, name: str, applied: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": name, "annotations": {"adroit.dev/applied-hash": applied}},
    }


def test_only_the_contested_object_waits_and_the_rest_of_the_stage_goes() -> None:
    """Another tool keeps rewriting the budget: the new release's Service still switches."""

    async def planned() -> tuple[Writes | str, dict[Stage, str]]:
        api = client.ApiClient()
        try:
            controller = Controller(api, settings(), None)
            pdb = controller.stages[Stage.PRODUCTION]["PodDisruptionBudget"]
            pdb.items["ads"] = Managed("PodDisruptionBudget", "ads", "ads", "h1")
            now = time.monotonic()
            for _ in range(LIMIT):
                controller.contests.put_back([KEY_PDB], now)
            writes: dict[Stage, Writes | str] = {
                Stage.PRODUCTION: Writes(
                    apply=(
                        manifest("PodDisruptionBudget", "ads", "h1"),  # put back again
                        manifest("Service", "ads", "h2"),  # the switch to a new release
                    )
                )
            }
            _, why = controller._held_if_contested("ads", writes)
            return writes[Stage.PRODUCTION], why
        finally:
            await api.close()

    staged, why = asyncio.run(planned())
    assert isinstance(staged, Writes)
    assert [m["kind"] for m in staged.apply] == ["Service"]
    assert "PodDisruptionBudget ads in production" in why[Stage.PRODUCTION]
