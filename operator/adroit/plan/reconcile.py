"""One pass over everything, and the per-key pieces it is made of.

The kube layer may call the pieces one key at a time (a flavor in a stage, a
flavor's status and finalizer, the trains, the formation, the pruning), each
on a World whose trains carry the statuses they were last written with:

- `stage_writes(flavor, stage, world, settings)`: what to apply and delete;
- `flavor_status(view, world)` (plan.flavors): the Flavor's status;
- `finalizer_action(view, world)`: add or remove the finalizer, or nothing;
- `step_trains(world, settings)` (plan.trains): the trains whose status changes;
- `form_train(world, settings)` and `prune(world, settings)` (plan.formation).

`reconcile(world, settings)` composes them into one Plan: trains are stepped
first, and everything else is planned on the world with their new statuses.
Running it again on the world it produced plans nothing.
"""

from dataclasses import dataclass, field, replace
from enum import StrEnum

from adroit.api.flavor import FlavorStatus
from adroit.api.settings import Settings
from adroit.api.train import ENDED_BADLY, Phase
from adroit.plan.cars import car_release, goes_to_production
from adroit.plan.converge import Writes, converge
from adroit.plan.flavors import flavor_status
from adroit.plan.formation import Formation, Pruning, form_train, prune, restorable
from adroit.plan.render import Manifest, Release, render_stage
from adroit.plan.runbook import dropped_from
from adroit.plan.stages import Stage, stage_namespace
from adroit.plan.trains import TrainStep, step_trains
from adroit.plan.world import FlavorView, World

Key = tuple[str, Stage]  # a flavor in a stage


class FinalizerAction(StrEnum):
    ADD = "add"
    REMOVE = "remove"


@dataclass(frozen=True)
class Target:
    """What a flavor should run in a stage; `release` None: nothing of it stays there."""

    release: Release | None


@dataclass(frozen=True)
class Plan:
    # Every (flavor, stage) planned, even with nothing to write: an entry means its
    # writes could be computed (the kube layer clears that key's error once they succeed).
    stages: dict[Key, Writes] = field(default_factory=dict)
    trains: dict[str, TrainStep] = field(default_factory=dict)  # only those that changed
    formation: Formation | None = None
    flavors: dict[str, FlavorStatus] = field(default_factory=dict)  # only those that changed
    add_finalizer: tuple[str, ...] = ()
    remove_finalizer: tuple[str, ...] = ()
    pruning: Pruning = field(default_factory=Pruning)
    # Keys whose writes could not be computed (an exception in rendering): the kube
    # layer puts them into World.errors, and the car carrying that flavor fails.
    errors: dict[Key, str] = field(default_factory=dict)

    @property
    def writes(self) -> Writes:
        total = Writes()
        for writes in self.stages.values():
            if writes:
                total = total + writes
        return total

    @property
    def new_train(self) -> Manifest | None:
        return self.formation.train if self.formation is not None else None


def staging_target(flavor: str, world: World, settings: Settings) -> Target | None:
    """What staging should run for the flavor (None: leave it as it is)."""
    held = world.on_tracks_car(flavor)
    if held is not None and not dropped_from(held[0], flavor):
        train, car = held
        return Target(car_release(car, train.name, settings))
    if flavor in world.unreadable:
        return None  # it exists, but what it asks for cannot be read: leave it as it runs
    view = world.flavors.get(flavor)
    if view is None or view.deleting:
        return Target(None)
    workloads, _ = world.staging.of(flavor)
    put_by = {w.release.train for w in workloads if w.release is not None}
    if any(
        world.phase_of(name) not in (None, Phase.DEPLOYED) or _dropped(world, name, flavor)
        for name in put_by
    ):
        # Its train did not finish well (rolled back, aborted, failed, or requeued at
        # window close): staging goes back to what production runs.
        return Target(world.production.running_release(flavor))
    running = world.staging.running_release(flavor)
    if running is None and not view.spec.staging_only:
        # Its Deployment deleted by hand: at rest, staging runs what production runs.
        running = world.production.running_release(flavor)
    # What runs stays, and is put back where it drifted.
    return Target(running) if running is not None else None


def production_target(flavor: str, world: World, settings: Settings) -> Target | None:
    """What production should run for the flavor (None: leave it as it is)."""
    held = world.on_tracks_car(flavor, Phase.PROMOTING)
    if held is not None and goes_to_production(held[1]) and not dropped_from(held[0], flavor):
        train, car = held
        return Target(car_release(car, train.name, settings))
    running = world.production.running_release(flavor)
    if running is not None:
        # What production runs is what its stable Service routes to; anything a failed
        # promotion left beside it is cleared away, and drift is put back.
        return Target(running)
    workloads, _ = world.production.of(flavor)
    put_by = {w.release.train for w in workloads if w.release is not None}
    if put_by and all(world.phase_of(name) in ENDED_BADLY for name in put_by):
        return Target(None)  # a first promotion that failed: nothing of it may stay
    restored = restorable(world, flavor, settings)
    # Its Deployment deleted by hand: what the last train shipped is put back, as any drift.
    return Target(restored) if restored is not None else None


def _dropped(world: World, train: str, flavor: str) -> bool:
    view = world.trains_by_name.get(train)
    return view is not None and dropped_from(view, flavor)


def stage_writes(flavor: str, stage: Stage, world: World, settings: Settings) -> Writes:
    """The writes that move one flavor in one stage towards what it should be.

    Reads only that flavor's objects, car and view: when it raises (bad data, a
    bug), no other flavor's writes are affected.
    """
    pick = staging_target if stage is Stage.STAGING else production_target
    target = pick(flavor, world, settings)
    if target is None:
        return Writes()
    plan = None
    if target.release is not None:
        namespace = stage_namespace(stage, settings.namespaces)
        traffic = settings.traffic if stage is Stage.PRODUCTION else None
        plan = render_stage(target.release, stage, namespace, traffic)
    return converge(flavor, plan, world.stage(stage))


def finalizer_action(view: FlavorView, world: World) -> FinalizerAction | None:
    """Our finalizer holds a deleted Flavor until nothing of it runs in any stage."""
    if not view.deleting:
        return None if view.has_finalizer else FinalizerAction.ADD
    gone = not any(world.staging.of(view.name)) and not any(world.production.of(view.name))
    return FinalizerAction.REMOVE if view.has_finalizer and gone else None


def planned_flavors(world: World) -> list[str]:
    """Every flavor with a Flavor, objects in a stage, or a car on an unfinished train."""
    flavors = set(world.flavors) | world.staging.flavors() | world.production.flavors()
    train = world.on_tracks
    if train is not None:
        flavors |= {c.flavor for c in train.spec.cars}
    return sorted(flavors)


def reconcile(world: World, settings: Settings) -> Plan:
    steps = step_trains(world, settings)
    if steps:
        world = replace(
            world,
            trains=tuple(
                replace(t, status=steps[t.name].status) if t.name in steps else t
                for t in world.trains
            ),
        )
    stages: dict[Key, Writes] = {}
    errors: dict[Key, str] = {}
    for flavor in planned_flavors(world):
        for stage in Stage:
            try:
                stages[(flavor, stage)] = stage_writes(flavor, stage, world, settings)
            except Exception as error:  # one flavor's fault is that flavor's alone
                errors[(flavor, stage)] = f"{type(error).__name__}: {error}"
    statuses = {}
    for name, view in world.flavors.items():
        status = flavor_status(view, world)
        if status != view.status:
            statuses[name] = status
    actions = {name: finalizer_action(view, world) for name, view in world.flavors.items()}
    return Plan(
        stages=stages,
        trains=steps,
        formation=form_train(world, settings),
        flavors=statuses,
        add_finalizer=tuple(sorted(n for n, a in actions.items() if a is FinalizerAction.ADD)),
        remove_finalizer=tuple(
            sorted(n for n, a in actions.items() if a is FinalizerAction.REMOVE)
        ),
        pruning=prune(world, settings),
        errors=errors,
    )
