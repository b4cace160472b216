"""A Flavor's status, computed from what runs in each stage and the trains carrying it."""

from collections.abc import Mapping
from datetime import datetime

from adroit.api.conditions import ConditionStatus
from adroit.api.flavor import FlavorStatus, ProductionStatus, StageStatus, TrafficSplit
from adroit.api.names import FINALIZER
from adroit.api.train import ENDED_BADLY
from adroit.plan.conditions import set_condition
from adroit.plan.runbook import dropped_from
from adroit.plan.stages import Stage
from adroit.plan.traffic import traffic_status
from adroit.plan.world import FlavorView, StageWorld, UnreadableFlavor, World

Condition = tuple[ConditionStatus, str, str]


def stage_status(world: StageWorld, flavor: str, stage: Stage) -> ProductionStatus | None:
    """What runs: the available containers of what runs, against the count its spec wants
    (never the live Deployment's replicas, which drift may have scaled to 0)."""
    running = world.running(flavor)
    if running is None or running.release is None:
        return None
    instances = running.release.spec.instances
    wanted = (
        instances.min_prod_containers if stage is Stage.PRODUCTION else instances.staging_containers
    )
    return ProductionStatus(
        revision=running.release.revision,
        model_version=running.release.spec.model.version,
        ready_containers=running.available_count,
        wanted_containers=wanted,
        train=running.release.train,
    )


def _pending(view: FlavorView, world: World, revision: str, running: str | None) -> Condition:
    if running == revision:
        return (ConditionStatus.FALSE, "UpToDate", f"revision {revision} is running")
    for train, car in world.unfinished_cars(view.name):
        if car.revision == revision:
            # Not the train's phase: a Flavor's status would change with every step of a
            # train, thousands of writes for a big one. `kubectl get train` says where it is.
            return (
                ConditionStatus.TRUE,
                "OnTrain",
                f"revision {revision} rides train {train.name}",
            )
    latest = world.latest_car(view.name)
    if latest is not None:
        train, car = latest
        if car.revision == revision and not car.remove:
            if train.status.phase in ENDED_BADLY:
                return (
                    ConditionStatus.TRUE,
                    "NotDeployed",
                    f"train {train.name} ended {train.status.phase} carrying revision "
                    f"{revision}: change the Flavor, or create a Train to try this revision "
                    "again",
                )
            if dropped_from(train, view.name):  # the rest of its train went on
                why = train.car_status[view.name]
                return (
                    ConditionStatus.TRUE,
                    "NotDeployed",
                    f"train {train.name} took revision {revision} out ({why.reason}"
                    f"{': ' + why.message if why.message else ''}): change the Flavor, or "
                    "create a Train to try this revision again",
                )
    return (ConditionStatus.TRUE, "AwaitingTrain", f"revision {revision} waits for a release train")


def _removal(view: FlavorView, world: World) -> Condition:
    """What a deleted Flavor waits for, and how to finish or cancel its removal."""
    name = view.name
    if not any(world.production.of(name)):
        return (ConditionStatus.FALSE, "Removed", "nothing of this flavor runs any more")
    for train, car in world.unfinished_cars(name):
        if car.remove:
            return (
                ConditionStatus.TRUE,
                "RemovalOnTrain",
                f"the removal rides train {train.name}; the Flavor is deleted "
                "once production no longer runs it",
            )
    latest = world.latest_car(name)
    if latest is not None and latest[1].remove and latest[0].status.phase in ENDED_BADLY:
        train = latest[0]
        return (
            ConditionStatus.TRUE,
            "RemovalNotDeployed",
            f"the removal rode train {train.name}, which ended {train.status.phase}; production "
            "still runs this flavor and the Flavor stays (terminating) until a removal ships. "
            "No removal train forms again by itself. To finish: create a Train with cars "
            f"[{{flavor: {name}, remove: true}}] and approve it. To cancel: remove the "
            f"finalizer {FINALIZER} from the Flavor, then apply the Flavor again; production "
            "keeps running it meanwhile",
        )
    return (
        ConditionStatus.TRUE,
        "RemovalAwaitingTrain",
        "the removal waits for a release train (it needs approval)",
    )


# A change that no train carries yet, when no train is on the tracks: the next formation
# takes it, and the condition becomes OnTrain (RemovalOnTrain) a moment later.
AWAITING_FORMATION = frozenset({"AwaitingTrain", "RemovalAwaitingTrain"})


def awaits_formation(status: FlavorStatus, world: World) -> bool:
    """The status says the change waits for a train, and a train is about to form for it."""
    if world.on_tracks is not None:
        return False
    pending = next((c for c in status.conditions if c.type == "PendingChanges"), None)
    return pending is not None and pending.reason in AWAITING_FORMATION


def flavor_status(
    view: FlavorView, world: World, contested: Mapping[Stage, str] | None = None
) -> FlavorStatus:
    """The Flavor's status; `contested`: why its objects in a stage are contested, if they
    are (plan.contest)."""
    revision = view.revision
    staged = stage_status(world.staging, view.name, Stage.STAGING)
    produced = stage_status(world.production, view.name, Stage.PRODUCTION)
    home = staged if view.spec.staging_only else produced
    running = home.revision if home else None
    gen, now = view.generation, world.now
    conditions = view.status.conditions

    pending = _removal(view, world) if view.deleting else _pending(view, world, revision, running)
    conditions = set_condition(conditions, "PendingChanges", *pending, now=now, generation=gen)

    if produced:
        in_prod: Condition = (
            ConditionStatus.TRUE,
            "Running",
            f"model version {produced.model_version} (revision {produced.revision})",
        )
    else:
        in_prod = (
            ConditionStatus.FALSE,
            "NotInProduction",
            "nothing of this flavor runs in production",
        )
    conditions = set_condition(conditions, "InProduction", *in_prod, now=now, generation=gen)

    where = "staging" if view.spec.staging_only else "production"
    ready: Condition
    if running != revision:
        ready = (ConditionStatus.FALSE, pending[1], pending[2])
    elif home and (home.ready_containers or 0) >= (home.wanted_containers or 0):
        ready = (ConditionStatus.TRUE, "Running", f"revision {revision} runs in {where}")
    else:
        ready = (
            ConditionStatus.FALSE,
            "NotAvailable",
            f"revision {revision} is not fully available in {where}",
        )
    refused = next(
        (
            (stage, world.errors[(view.name, stage)])
            for stage in Stage
            if (view.name, stage) in world.errors
        ),
        None,
    )
    if running == revision and refused is not None:
        ready = (
            ConditionStatus.FALSE,
            "WriteRefused",
            f"what {refused[0]} should run cannot be put back: {refused[1]}. An object of "
            "this flavor there was likely edited by hand in a way the operator cannot undo: "
            "undo that edit, and the operator puts the rest back",
        )
    fought = next(iter((contested or {}).values()), None)
    if (running != revision or refused is None) and fought is not None:
        ready = (ConditionStatus.FALSE, "Contested", fought)
    conditions = set_condition(conditions, "Ready", *ready, now=now, generation=gen)

    if produced is not None:
        traffic = traffic_status(world.production, view.name)
        if traffic is not None:
            produced = produced.model_copy(update={"traffic": TrafficSplit.model_validate(traffic)})
    return view.status.model_copy(
        update={
            "observed_generation": gen,
            "revision": revision,
            "staging": StageStatus.model_validate(staged.model_dump(exclude={"traffic"}))
            if staged
            else None,
            "production": produced,
            "conditions": conditions,
        }
    )


def unreadable_status(flavor: UnreadableFlavor, now: datetime) -> FlavorStatus:
    """Ready is False and says why, for a Flavor this operator cannot read; the rest of its
    status (what runs where) is left as it was."""
    message = (
        f"the spec cannot be read: {flavor.reason}. Nothing of this flavor is changed or "
        "removed meanwhile; correct the Flavor and apply it again"
    )
    conditions = set_condition(
        flavor.status.conditions,
        "Ready",
        ConditionStatus.FALSE,
        "SpecUnreadable",
        message,
        now=now,
        generation=flavor.generation,
    )
    return flavor.status.model_copy(
        update={"observed_generation": flavor.generation, "conditions": conditions}
    )
