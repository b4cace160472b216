"""One pass over everything: trains stepped, stages converged, trains formed, status reported.

`reconcile(world, settings)` is pure; the kube layer reads the World and
carries out the Plan. Running it again on the world it produced plans nothing.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from adroit.api import names
from adroit.api.flavor import FlavorStatus
from adroit.api.settings import Settings
from adroit.api.train import FINISHED, ON_THE_TRACKS, Car, Phase, TrainSpec
from adroit.plan.cars import CarError, car_release, goes_to_production, images_for
from adroit.plan.converge import Writes, converge
from adroit.plan.flavors import flavor_status
from adroit.plan.render import Release, StagePlan, render_stage
from adroit.plan.revision import flavor_revision
from adroit.plan.stages import Stage
from adroit.plan.trains import TrainStep, step_trains
from adroit.plan.world import FlavorView, TrainView, World


@dataclass(frozen=True)
class Plan:
    writes: Writes = field(default_factory=Writes)
    trains: dict[str, TrainStep] = field(default_factory=dict)  # only those that changed
    new_train: dict[str, Any] | None = None
    flavors: dict[str, FlavorStatus] = field(default_factory=dict)  # only those that changed
    add_finalizer: tuple[str, ...] = ()
    remove_finalizer: tuple[str, ...] = ()


_KEEP = object()  # a stage target meaning: leave the flavor as it is there


def _step_all(world: World, settings: Settings) -> tuple[list[TrainView], dict[str, TrainStep]]:
    changed = step_trains(world, settings)
    trains = [
        replace(t, status=changed[t.name].status) if t.name in changed else t for t in world.trains
    ]
    return trains, changed


def _holding(
    trains: list[TrainView], flavor: str, phases: frozenset[Phase]
) -> tuple[TrainView, Car] | None:
    for train in trains:
        if train.status.phase in phases:
            for car in train.spec.cars:
                if car.flavor == flavor:
                    return train, car
    return None


def _plan_for(release: Release | None, stage: Stage, settings: Settings) -> StagePlan | None:
    if release is None:
        return None
    ns = settings.namespaces.staging if stage is Stage.STAGING else settings.namespaces.production
    return render_stage(release, stage, ns, settings.traffic if stage is Stage.PRODUCTION else None)


def staging_target(
    flavor: str, trains: list[TrainView], world: World, settings: Settings
) -> object:
    held = _holding(trains, flavor, ON_THE_TRACKS)
    if held is not None:
        train, car = held
        return _plan_for(car_release(car, train.name, settings), Stage.STAGING, settings)
    view = world.flavors.get(flavor)
    if view is None or view.deleting:
        return None
    phases = {t.name: t.status.phase for t in trains}
    workloads, _ = world.staging.of(flavor)
    put_by = {w.release.train for w in workloads if w.release is not None}
    if any(name in phases and phases[name] != Phase.DEPLOYED for name in put_by):
        # Its train did not finish well (rolled back, aborted, failed, or requeued at
        # window close): staging goes back to what production runs.
        routed = world.production.routed(flavor)
        return _plan_for(routed.release if routed else None, Stage.STAGING, settings)
    return _KEEP


def production_target(
    flavor: str, trains: list[TrainView], world: World, settings: Settings
) -> object:
    held = _holding(trains, flavor, frozenset({Phase.PROMOTING}))
    if held is not None and goes_to_production(held[1]):
        train, car = held
        return _plan_for(car_release(car, train.name, settings), Stage.PRODUCTION, settings)
    routed = world.production.routed(flavor)
    if routed is not None and routed.release is not None:
        # What production runs is what its stable Service routes to; anything a
        # failed promotion left beside it is cleared away.
        return _plan_for(routed.release, Stage.PRODUCTION, settings)
    phases = {t.name: t.status.phase for t in trains}
    workloads, _ = world.production.of(flavor)
    put_by = {w.release.train for w in workloads if w.release is not None}
    if put_by and all(phases.get(name) in FINISHED - {Phase.DEPLOYED} for name in put_by):
        return None  # a first promotion that failed: nothing of it may stay
    return _KEEP


def form_train(trains: list[TrainView], world: World, settings: Settings) -> dict[str, Any] | None:
    """A new train with every change no train carries, when no train is on the tracks."""
    if any(t.status.phase in ON_THE_TRACKS for t in trains):
        return None
    carried = {
        (c.flavor, c.revision, c.image if t.spec.runtime_release else None)
        for t in trains
        for c in t.spec.cars
        if not c.remove
    }
    removing = {c.flavor for t in trains for c in t.spec.cars if c.remove}
    changes: list[tuple[datetime | None, Car, FlavorView | None]] = []
    runtime_only = True
    for name, view in sorted(world.flavors.items()):
        if view.deleting:
            if any(world.production.of(name)) and name not in removing:
                changes.append((None, Car(flavor=name, remove=True, author=view.author), view))
                runtime_only = False
            continue
        revision = flavor_revision(view.spec)
        home = world.staging if view.spec.staging_only else world.production
        routed = home.routed(name)
        running = routed.release if routed else None
        probe = Car(flavor=name, revision=revision, spec=view.spec)
        image: str | None
        shadow_image: str | None
        try:
            image, shadow_image = images_for(name, view.spec, settings)
        except CarError:  # the train will fail with a clear reason; it still forms
            image = shadow_image = None
        if running is None or running.revision != revision:
            if (name, revision, None) not in carried:
                since = next(
                    (
                        c.last_transition_time
                        for c in view.status.conditions
                        if c.type == "PendingChanges"
                    ),
                    None,
                )
                changes.append(
                    (
                        since,
                        probe.model_copy(
                            update={
                                "image": image,
                                "shadow_image": shadow_image,
                                "author": view.author,
                            }
                        ),
                        view,
                    )
                )
                runtime_only = False
        elif (
            image is not None and running.image != image and (name, revision, image) not in carried
        ):
            changes.append((None, probe.model_copy(update={"image": image}), view))
    if not changes:
        return None
    changes.sort(key=lambda c: (c[0] is None, c[0] or world.now, c[1].flavor))
    first = changes[0][2]
    engineer = (first.author if first and first.author else None) or (
        first.spec.owner if first else "adroit"
    )
    spec = TrainSpec(
        engineer=engineer, cars=[c for _, c, _ in changes], runtime_release=runtime_only
    )
    taken = {t.name for t in trains}
    name = base = f"train-{world.now:%Y%m%d-%H%M%S}"
    suffix = 1
    while name in taken:
        suffix += 1
        name = f"{base}-{suffix}"
    return {
        "apiVersion": names.API_VERSION,
        "kind": "Train",
        "metadata": {
            "name": name,
            "namespace": settings.namespaces.control,
            "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE},
        },
        "spec": spec.to_wire(),
    }


def reconcile(world: World, settings: Settings) -> Plan:
    trains, steps = _step_all(world, settings)
    writes = Writes()
    flavors = set(world.flavors) | world.staging.flavors() | world.production.flavors()
    for train in trains:
        flavors |= {c.flavor for c in train.spec.cars}
    for flavor in sorted(flavors):
        for stage, target in (
            (Stage.STAGING, staging_target(flavor, trains, world, settings)),
            (Stage.PRODUCTION, production_target(flavor, trains, world, settings)),
        ):
            if target is not _KEEP:
                assert target is None or isinstance(target, StagePlan)
                writes = writes + converge(flavor, target, world.stage(stage))
    statuses = {}
    for name, view in world.flavors.items():
        status = flavor_status(view, world.staging, world.production, trains, world.now)
        if status != view.status:
            statuses[name] = status
    return Plan(
        writes=writes,
        trains=steps,
        new_train=form_train(trains, world, settings),
        flavors=statuses,
        add_finalizer=tuple(
            sorted(n for n, v in world.flavors.items() if not v.deleting and not v.has_finalizer)
        ),
        remove_finalizer=tuple(
            sorted(
                n
                for n, v in world.flavors.items()
                if v.deleting
                and v.has_finalizer
                and not any(world.staging.of(n))
                and not any(world.production.of(n))
            )
        ),
    )
