"""The runbook's shadow rules, checked against what production really runs.

The CRD and the admission webhook check a Flavor when it is written, against
the Flavor's previous spec only; the webhook may not even be running. So each
car is checked again when its train forms and before its promotion, against
production as observed: a car that breaks a rule fails alone, with the rule's
own words, and the rest of the train goes on.
"""

from dataclasses import dataclass

from adroit.api.settings import Settings
from adroit.api.train import Car, TrainStatus
from adroit.plan.render import Release, deployment_name, shadow_view
from adroit.plan.routes import shadow_refusal
from adroit.plan.stages import Stage
from adroit.plan.traffic import traffic_status
from adroit.plan.world import StageWorld, TrainView

NO_ROUTER = "ShadowWithoutRouter"
OVER_MIRROR_CAP = "MirrorOverCap"
UNTESTED_SHADOW = "UntestedShadowTraffic"
# Before live traffic, a shadow's metrics under mirroring are compared with the
# primary's (plan.verification.judge_shadow).
SHADOW_WORSE = "ShadowWorseThanPrimary"
SHADOW_NOT_COMPARED = "ShadowNotCompared"
# A car failed with one of these reasons in status.cars stays out of the train.
REASONS = frozenset(
    {NO_ROUTER, OVER_MIRROR_CAP, UNTESTED_SHADOW, SHADOW_WORSE, SHADOW_NOT_COMPARED}
)


@dataclass(frozen=True)
class Breach:
    """A runbook rule a car breaks: why, in one word and for a person."""

    reason: str
    message: str


def _tested_in_production(release: Release, production: StageWorld) -> bool:
    """Whether production already copies or serves requests to this very shadow: the
    same Deployment (image, model, memory, node selector), with the route applied."""
    shadow = shadow_view(release)
    running = production.running_release(release.flavor)
    live = shadow_view(running) if running is not None else None
    if shadow is None or live is None:
        return False
    same = deployment_name(shadow, Stage.PRODUCTION) == deployment_name(live, Stage.PRODUCTION)
    split = traffic_status(production, release.flavor)
    routed = split is not None and (
        int(str(split["mirror_percent"])) > 0 or int(str(split["shadow_percent"])) > 0
    )
    return same and routed


def runbook_breach(
    car: Car, release: Release | None, production: StageWorld, settings: Settings
) -> Breach | None:
    """The first runbook rule the car breaks, judged against what production runs now."""
    if car.spec is None or car.spec.shadow is None or release is None:
        return None
    shadow = car.spec.shadow
    why = shadow_refusal(shadow.to_wire(), settings.traffic)
    if why is not None:
        reason = NO_ROUTER if settings.traffic.router == "none" else OVER_MIRROR_CAP
        return Breach(reason, f"car {car.flavor}: {why}")
    if shadow.traffic_percent > 0 and not _tested_in_production(release, production):
        return Breach(
            UNTESTED_SHADOW,
            f"car {car.flavor}: spec.shadow.trafficPercent {shadow.traffic_percent} routes live "
            "traffic to a shadow that production has not mirrored to (production does not run "
            "this shadow's image and model with a mirror or live share): a new or changed "
            "shadow model must start with trafficPercent: 0; mirror or test it first, then "
            "route live traffic to it in a later change",
        )
    return None


def dropped_cars(status: TrainStatus) -> dict[str, Breach]:
    """The cars a runbook rule took out of the train, as its status recorded them."""
    return {
        c.flavor: Breach(c.reason or "", c.message or "")
        for c in status.cars
        if c.reason in REASONS
    }


def dropped_from(train: TrainView, flavor: str) -> bool:
    """Whether a runbook rule took the flavor's car out of the train."""
    car = train.car_status.get(flavor)
    return car is not None and car.reason in REASONS
