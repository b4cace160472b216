"""What the reconciler's wake-up costs the event loop, with N flavors and a train in Verifying.

    python bench/snapshot.py [--flavors 2000] [--runs 7]

No cluster: the plan's in-memory stand-in for the stages (tests/unit/sim.py)
takes N flavors through staging to Verifying, and the operator's Controller
gets its caches filled with what the watches would hold (the Deployments,
Services, budgets and one pod per replica of both stages, the Flavors, the
Train and its ControllerRevisions). Then, as in a rollout, one object changes
and the reconciler wakes up. Printed for each kind of change, the median of the
runs after the first: the time the event loop is held (copying the caches,
following the verification checks due), the time off the loop in a worker
thread (building the world with its indexes; looking at the trains: the gauges,
the checks due, the train's step), and the first flavor's plan on the loop.
"""

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes_asyncio import client
from tests.unit.sim import Sim, spec

from adroit.api import names
from adroit.api.train import Phase
from adroit.kube.act import merge_patch, status_json_patch
from adroit.kube.controller import Controller, _pod_of
from adroit.plan.formation import REVISION_LABEL, snapshot_spec
from adroit.plan.observe import managed_of
from adroit.plan.render import DEPLOYMENT_LABEL
from adroit.plan.stages import Stage


def to_verifying(flavors: int) -> Sim:
    sim = Sim()
    for i in range(flavors):
        sim.apply_flavor(f"f{i:04d}", spec("v1"))
    sim.settle()
    train = sim.only_train()
    if sim.phase(train) != Phase.VERIFYING:
        raise SystemExit(f"the train is {sim.phase(train)}, not Verifying")
    return sim


def fill(controller: Controller, sim: Sim) -> None:
    """The caches as the watches would fill them."""
    controller.flavors.items.update(sim.flavors)
    controller.trains.items.update(
        {n: replace(t, resource_version="1", uid=n) for n, t in sim.trains.items()}
    )
    controller.revisions.items.update(
        {
            name: snapshot_spec(kept["metadata"]["labels"][REVISION_LABEL], kept["data"])
            for name, kept in sim.revisions.items()
        }
    )
    for stage in Stage:
        watched = controller.stages[stage]
        workloads = {w.name: w for w in sim.stage_world(stage).workloads}
        watched["Deployment"].items.update(workloads)
        for (kind, name), manifest in sim.objects[stage].items():
            if kind != "Deployment":
                watched[kind].items[name] = managed_of(kind, manifest)
        for name, workload in workloads.items():
            for replica in range(workload.replicas):
                pod = f"{name}-{replica}"
                meta = {"name": pod, "labels": {DEPLOYMENT_LABEL: name}}
                watched["Pod"].items[pod] = _pod_of({"metadata": meta, "status": {}})


def ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


async def measure(sim: Sim, runs: int) -> None:
    controller = Controller(client.ApiClient(), sim.settings, None)
    fill(controller, sim)
    train = sim.only_train()
    versions = iter(range(2, 10**6))
    staging = controller.stages[Stage.STAGING]["Deployment"]
    some = next(iter(staging.items))

    def change(what: str) -> None:
        if what == "a staging Deployment":
            staging.on_change(staging.items[some], staging.items[some])
        elif what == "a staging pod":
            pods = controller.stages[Stage.STAGING]["Pod"]
            pod = next(iter(pods.items.values()))
            pods.on_change(pod, pod)
        elif what == "the train's status":
            view = controller.trains.items[train]
            controller.trains.items[train] = replace(view, resource_version=str(next(versions)))

    def wake_up() -> tuple[float, float, float, float]:
        """As the reconciler's wake-up after a change: on the loop, the caches are copied;
        off it, the world is built and the trains are looked at; on it again, the checks due
        are followed and the first flavor is planned. (ms on the loop, the world, the look
        at the trains, the first flavor's plan)"""
        start = time.perf_counter()
        caches = controller.caches()
        copied = ms(start)
        start = time.perf_counter()
        world = controller.world(caches)
        built = ms(start)
        start = time.perf_counter()
        _, due = controller._look_at_trains(world)
        looked = ms(start)
        start = time.perf_counter()
        controller.verifier.follow(due)
        followed = ms(start)
        start = time.perf_counter()
        controller._plan_flavor(some, world)
        return copied + followed, built, looked, ms(start)

    print(f"the reconciler's wake-up with {len(sim.flavors)} flavors and a train in Verifying,")
    print(f"median of {runs} runs after the first, ms:")
    print(
        f"  {'after a change of':24} {'on the loop':>11} {'the world':>10} {'the trains':>11} "
        f"{'a flavor':>9}"
    )
    print(f"  {'':24} {'':>11} {'(off it)':>10} {'(off it)':>11} {'(on it)':>9}")
    for what in ("nothing", "a staging Deployment", "a staging pod", "the train's status"):
        figures = []
        for _ in range(runs + 1):
            change(what)
            figures.append(wake_up())
        median = [statistics.median(f[i] for f in figures[1:]) for i in range(4)]
        print(f"  {what:24} {median[0]:11.2f} {median[1]:10.1f} {median[2]:11.1f} {median[3]:9.2f}")
    await every_flavor(controller, runs)
    status_written(controller, train, runs)
    await controller.verifier.close()
    await controller.api.close()


async def every_flavor(controller: Controller, runs: int) -> None:
    """Every flavor looked at in one wake-up (after a restart, or a change of settings): how
    many steps the event loop takes, and the longest of them. Nothing is written: each
    flavor's objects and status are already what they should be."""
    world = await asyncio.to_thread(controller.world, controller.caches())
    keys = set(controller.flavors.items)
    steps: list[float] = []
    handles: Any = asyncio.events.Handle  # every step of the loop runs through it
    run = handles._run

    def timed(handle: asyncio.Handle) -> None:
        started = time.perf_counter()
        run(handle)
        steps.append(ms(started))

    figures = []
    handles._run = timed
    try:
        for _ in range(runs + 1):
            steps.clear()
            start = time.perf_counter()
            await controller._batch(keys, world)
            figures.append((ms(start), len(steps), max(steps)))
    finally:
        handles._run = run
    took, count, longest = (statistics.median(f[i] for f in figures[1:]) for i in range(3))
    print(f"every one of the {len(keys)} flavors looked at in one wake-up, median of {runs} runs:")
    print(f"  {took:.0f} ms on the loop, in {count:.0f} steps; the longest step {longest:.1f} ms")


def body_by_car(current: dict[str, Any], desired: dict[str, Any]) -> Any:
    """The body as patch_status makes it: the merge patch's diff, then the elements."""
    diff = merge_patch(current, desired)
    guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": "1"}
    return [guard, *(status_json_patch(current, desired, diff) or [])]


def body_whole(current: dict[str, Any], desired: dict[str, Any]) -> Any:
    """The body as a merge patch, the whole list in it."""
    return {"metadata": {"resourceVersion": "1"}, "status": merge_patch(current, desired)}


def status_written(controller: Controller, name: str, runs: int) -> None:
    """A status write that changes one car of the train, as the loop sees it (ms, and the
    body's bytes): the body made and serialized as the API client does, the answer decoded
    and read into the cache, its echo on the watch."""
    view = controller.trains.items[name]
    spec = view.spec.to_wire()
    meta = {"name": name, "namespace": "adroit", "uid": view.uid, "generation": 1}
    meta["creationTimestamp"] = "2026-11-28T00:00:00Z"
    api = controller.api
    versions = iter(range(10, 10**6))
    figures: list[tuple[float, ...]] = []
    for run in range(runs + 1):
        current = controller.trains.items[name].status.to_wire()
        cars = list(current["cars"])
        cars[run % len(cars)] = {**cars[run % len(cars)], "message": f"write {run}"}
        desired = {**current, "cars": cars}
        row: list[float] = []
        for body in (body_by_car, body_whole):
            start = time.perf_counter()
            sent = json.dumps(api.sanitize_for_serialization(body(current, desired)))
            row += [ms(start), len(sent)]

        def answer(status: dict[str, Any]) -> str:
            """The object as the API server writes it: apiVersion, kind, metadata first."""
            version = {**meta, "resourceVersion": str(next(versions))}
            obj = {"apiVersion": names.API_VERSION, "kind": "Train", "metadata": version}
            return json.dumps({**obj, "spec": spec, "status": status}, separators=(",", ":"))

        read_whole = answer({**current, "message": f"write {run}"})
        controller._read_cars.clear()  # every car read, as before a status was read by car
        start = time.perf_counter()
        controller.trains.remember(json.loads(read_whole))
        whole_ms = ms(start)
        read_by_car = answer(desired)
        start = time.perf_counter()
        controller.trains.remember(json.loads(read_by_car))
        row += [ms(start), whole_ms]
        line = b'{"type":"MODIFIED","object":' + read_by_car.encode() + b"}"
        start = time.perf_counter()
        controller.trains._line(line)
        row.append(ms(start))
        start = time.perf_counter()
        json.loads(line)
        row.append(ms(start))
        figures.append(tuple(row))
    by_car, by_car_bytes, whole, whole_bytes, answer_ms, answer_whole, echo, echo_whole = (
        statistics.median(f[i] for f in figures[1:]) for i in range(8)
    )
    print(f"a status write that changes one car of {len(view.spec.cars)}, median of {runs} runs:")
    print(f"  {'on the loop, ms':34} {'now':>7} {'whole':>7}")
    print(f"  {'the body made and serialized':34} {by_car:7.2f} {whole:7.2f}")
    print(f"  {'  its bytes':34} {by_car_bytes:7.0f} {whole_bytes:7.0f}")
    print(f"  {'the answer read into the cache':34} {answer_ms:7.2f} {answer_whole:7.2f}")
    print(f"  {'its echo on the watch':34} {echo:7.2f} {echo_whole:7.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavors", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    sim = to_verifying(args.flavors)
    asyncio.run(measure(sim, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
