"""The traffic split a flavor's route carries in production, read back from the route."""

from adroit.plan.render import shadow_view
from adroit.plan.routes import ROUTE_KIND_NAMES, applied_split
from adroit.plan.world import StageWorld


def traffic_status(world: StageWorld, flavor: str) -> dict[str, object] | None:
    """The split the flavor's route actually carries in production, if it has a route."""
    routed = world.routed(flavor)
    workloads, others = world.of(flavor)
    route = next((o for o in others if o.kind in ROUTE_KIND_NAMES), None)
    if routed is None or routed.release is None or route is None or route.body is None:
        return None
    shadow = next((w for w in workloads if w.role == "shadow"), None)
    split = applied_split(
        {"kind": route.kind, **route.body.read()}, routed.name, shadow.name if shadow else None
    )
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
