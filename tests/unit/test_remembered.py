"""A train's step reuses what it worked out for a car only while the car's objects are the same."""

from dataclasses import replace

import pytest

from adroit.api.train import Phase
from adroit.plan import machine
from adroit.plan.trains import step_trains
from adroit.plan.world import Remembered, StageWorld
from tests.unit.sim import Sim, spec


def test_a_car_is_rendered_again_only_when_its_objects_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = Sim()
    for name in ("ads", "feed", "news"):
        sim.apply_flavor(name, spec("v1"))
    sim.settle()
    train = sim.only_train()
    assert sim.phase(train) == Phase.VERIFYING
    rendered: list[str] = []
    car_health = machine.car_health

    def counted(release, flavor, *args):  # type: ignore[no-untyped-def]
        rendered.append(flavor)
        return car_health(release, flavor, *args)

    monkeypatch.setattr(machine, "car_health", counted)
    world = replace(sim.world(), remembered=Remembered())

    assert train not in step_trains(world, sim.settings), "verifying, nothing to say yet"
    assert sorted(rendered) == ["ads", "feed", "news"]
    rendered.clear()
    assert train not in step_trains(world, sim.settings)
    assert rendered == [], "nothing changed: every car's health is the one worked out before"

    # The watch brings a new version of ads' staging Deployment: no longer available.
    staging = world.staging
    broken = [
        replace(w, available=False, ready_replicas=0, available_replicas=0)
        if w.flavor == "ads"
        else w
        for w in staging.workloads
    ]
    world = replace(
        world,
        staging=StageWorld(staging.namespace, tuple(broken), staging.others, staging.quota),
    )
    step = step_trains(world, sim.settings)[train]
    assert rendered == ["ads"]
    assert (step.status.phase, step.status.reason) == (
        Phase.ROLLED_BACK,
        "BrokeDuringVerification",
    )
