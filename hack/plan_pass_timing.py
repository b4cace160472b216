"""Pure time of one reconcile pass over a large world (a figure, not a test).

    .venv/bin/python hack/plan_pass_timing.py [N]

Worlds: N flavors settled in both stages (every one shipped by one finished
train); the same with a train of N cars verifying; and N flavors with 5,000
finished trains kept. Times the second pass (the first writes statuses).
"""

import sys
import time
from dataclasses import replace
from datetime import timedelta

from tests.unit.sim import Sim, spec

from adroit.api.train import Phase, TrainSpec, TrainStatus
from adroit.plan.reconcile import reconcile
from adroit.plan.render import Release, Stage, render_stage
from adroit.plan.world import TrainView


def world_of(n: int, finished: int = 1, verifying: bool = False) -> Sim:
    sim = Sim()
    s = sim.settings
    image = next(iter(s.runtimes.values())).image
    cars = []
    for i in range(n):
        name = f"flavor-{i:05d}"
        fspec = spec(f"v{i}")
        sim.apply_flavor(name, fspec)
        release = Release(name, fspec, image, "train-0")
        for stage, ns, traffic in (
            (Stage.STAGING, s.namespaces.staging, None),
            (Stage.PRODUCTION, s.namespaces.production, s.traffic),
        ):
            plan = render_stage(release, stage, ns, traffic)
            for m in plan.workloads + plan.routing:
                sim.objects[stage][(m["kind"], m["metadata"]["name"])] = m
        cars.append({"flavor": name, "revision": release.revision, "image": image})
    for t in range(finished):
        train = TrainSpec.model_construct(
            engineer="bob",
            cars=[replace_car(c) for c in (cars if t == 0 else cars[t % n : t % n + 1])],
            runtime_release=False,
        )
        sim.trains[f"train-{t}"] = TrainView(
            name=f"train-{t}",
            created_at=sim.now - timedelta(days=1, seconds=-t),
            spec=train,
            status=TrainStatus(phase=Phase.DEPLOYED),
        )
    if verifying:
        moving = TrainSpec.model_construct(
            engineer="bob", cars=[replace_car(c) for c in cars], runtime_release=False
        )
        sim.trains["train-moving"] = TrainView(
            name="train-moving", created_at=sim.now, spec=moving, status=TrainStatus()
        )
    return sim


def replace_car(car: dict) -> object:
    from adroit.api.train import Car

    i = int(car["flavor"].split("-")[1])
    return Car.model_construct(
        flavor=car["flavor"],
        revision=car["revision"],
        spec=spec(f"v{i}"),
        remove=False,
        image=car["image"],
        shadow_image=None,
        author="bob",
    )


def timed(sim: Sim, label: str) -> None:
    sim.step()  # statuses written once
    if "verifying" in label:
        for _ in range(3):
            sim.step()
    world = sim.world()
    start = time.perf_counter()
    plan = reconcile(world, sim.settings)
    took = time.perf_counter() - start
    print(
        f"{label:45s} {took:7.3f} s  (writes {len(plan.writes.apply)}+{len(plan.writes.delete)}, "
        f"trains {len(plan.trains)}, flavors {len(plan.flavors)})"
    )


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    timed(world_of(n), f"{n} flavors settled, 1 finished train")
    timed(world_of(n, verifying=True), f"{n} flavors, a {n}-car train verifying")
    timed(world_of(n, finished=5000), f"{n} flavors, 5000 finished trains")
    _ = replace
