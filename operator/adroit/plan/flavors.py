"""A Flavor's status, computed from what runs in each stage and the trains carrying it."""

from datetime import datetime

from adroit.api.conditions import ConditionStatus
from adroit.api.flavor import FlavorStatus, ProductionStatus, StageStatus, TrafficSplit
from adroit.api.train import FINISHED, Phase
from adroit.plan.conditions import set_condition
from adroit.plan.render import shadow_view
from adroit.plan.revision import flavor_revision
from adroit.plan.routes import ROUTE_KIND_NAMES, applied_split
from adroit.plan.world import FlavorView, StageWorld, TrainView


def stage_status(world: StageWorld, flavor: str) -> dict[str, object] | None:
    routed = world.routed(flavor)
    if routed is None or routed.release is None:
        return None
    return {
        "revision": routed.release.revision,
        "model_version": routed.release.spec.model.version,
        "ready_containers": routed.ready_replicas,
        "wanted_containers": routed.replicas,
        "train": routed.release.train,
    }


def traffic_status(world: StageWorld, flavor: str) -> dict[str, object] | None:
    """The split the flavor's route actually carries in production, if it has a route."""
    routed = world.routed(flavor)
    workloads, others = world.of(flavor)
    route = next((o for o in others if o.kind in ROUTE_KIND_NAMES), None)
    if routed is None or routed.release is None or route is None or route.body is None:
        return None
    shadow = next((w for w in workloads if w.role == "shadow"), None)
    split = applied_split(route.body, routed.name, shadow.name if shadow else None)
    if split is None:
        return None
    view = shadow_view(routed.release)
    return {
        "primary_percent": split.primary,
        "shadow_percent": split.shadow,
        "mirror_percent": split.mirror,
        "shadow_model_version": view.spec.model.version if view and shadow else None,
        "shadow_is_primary": split.shadow == 100,
    }


def carrying(trains: list[TrainView], flavor: str, revision: str) -> TrainView | None:
    """The latest train that carries this revision of the flavor."""
    found = [
        t for t in trains for c in t.spec.cars if c.flavor == flavor and c.revision == revision
    ]
    return max(found, key=lambda t: (t.created_at, t.name)) if found else None


def flavor_status(
    view: FlavorView,
    staging: StageWorld,
    production: StageWorld,
    trains: list[TrainView],
    now: datetime,
) -> FlavorStatus:
    revision = flavor_revision(view.spec)
    staged, produced = stage_status(staging, view.name), stage_status(production, view.name)
    home = staged if view.spec.staging_only else produced
    running = home["revision"] if home else None
    gen = view.generation
    conditions = view.status.conditions

    if running == revision:
        pending = (ConditionStatus.FALSE, "UpToDate", f"revision {revision} is running")
    else:
        train = carrying(trains, view.name, revision)
        if train is None:
            pending = (
                ConditionStatus.TRUE,
                "AwaitingTrain",
                f"revision {revision} waits for a release train",
            )
        elif train.status.phase not in FINISHED:
            phase = train.status.phase or Phase.QUEUED
            pending = (
                ConditionStatus.TRUE,
                "OnTrain",
                f"revision {revision} rides train {train.name} ({phase})",
            )
        else:
            pending = (
                ConditionStatus.TRUE,
                "NotDeployed",
                f"train {train.name} ended {train.status.phase} carrying revision {revision}: "
                "change the Flavor, or create a Train to try this revision again",
            )
    conditions = set_condition(conditions, "PendingChanges", *pending, now=now, generation=gen)

    if produced:
        in_prod = (
            ConditionStatus.TRUE,
            "Running",
            f"model version {produced['model_version']} (revision {produced['revision']})",
        )
    else:
        in_prod = (
            ConditionStatus.FALSE,
            "NotInProduction",
            "nothing of this flavor runs in production",
        )
    conditions = set_condition(conditions, "InProduction", *in_prod, now=now, generation=gen)

    where = "staging" if view.spec.staging_only else "production"
    if running == revision and home and home["ready_containers"] == home["wanted_containers"]:
        ready = (ConditionStatus.TRUE, "Running", f"revision {revision} runs in {where}")
    else:
        ready = (
            ConditionStatus.FALSE,
            pending[1] if running != revision else "NotAvailable",
            pending[2]
            if running != revision
            else f"revision {revision} is not fully ready in {where}",
        )
    conditions = set_condition(conditions, "Ready", *ready, now=now, generation=gen)

    if produced is not None:
        traffic = traffic_status(production, view.name)
        if traffic is not None:
            produced["traffic"] = TrafficSplit.model_validate(traffic)
    return view.status.model_copy(
        update={
            "observed_generation": gen,
            "revision": revision,
            "staging": StageStatus.model_validate(staged) if staged else None,
            "production": ProductionStatus.model_validate(produced) if produced else None,
            "conditions": conditions,
        }
    )
