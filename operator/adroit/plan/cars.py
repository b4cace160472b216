"""What a car runs: its release, its images, and how healthy it is in a stage."""

from adroit.api.flavor import FlavorSpec
from adroit.api.settings import Runtime, Settings
from adroit.api.train import Car, TrainSpec
from adroit.plan.converge import Health, health
from adroit.plan.render import Release, render_stage
from adroit.plan.stages import Stage, stage_namespace
from adroit.plan.world import World


class CarError(ValueError):
    """A car that cannot run with these settings."""

    reason = "UnknownRuntime"


class RepeatedFlavor(CarError):
    """A train that carries a flavor twice (admitted while the webhook was off)."""

    reason = "RepeatedFlavor"


class SnapshotMissing(CarError):
    """A car whose spec is neither embedded nor filled in from its ControllerRevision."""

    reason = "SnapshotMissing"


def snapshot_name(flavor: str, revision: str) -> str:
    """The ControllerRevision that keeps the spec of a car carrying `revision` of `flavor`."""
    return f"{flavor}-{revision}"


def catalog_runtime(flavor: str, runtime: str | None, settings: Settings) -> Runtime:
    """The catalog's entry for a runtime (the settings' default when None)."""
    runtime = runtime or settings.default_runtime
    if runtime is None or runtime not in settings.runtimes:
        known = ", ".join(sorted(settings.runtimes))
        raise CarError(
            f"car {flavor}: runtime {runtime or '(none)'} is not in the settings' runtime "
            f"catalog ({known}): name one of those in the Flavor's model.runtime"
        )
    return settings.runtimes[runtime]


def runtime_image(flavor: str, runtime: str | None, settings: Settings) -> str:
    """The catalog's image for a runtime (the settings' default when None)."""
    return catalog_runtime(flavor, runtime, settings).image


def serving_of(runtime: Runtime) -> Runtime | None:
    """What a Deployment needs to know of its runtime beyond the image (None: nothing, as for
    a plain image string, so that its pods and name stay as they were)."""
    plain = Runtime(image=runtime.image)
    return None if runtime == plain else runtime


def images_for(flavor: str, spec: FlavorSpec, settings: Settings) -> tuple[str, str | None]:
    """The primary's image and, with a shadow, the shadow's (its runtime, else the primary's)."""
    primary = runtime_image(flavor, spec.model.runtime, settings)
    if spec.shadow is None:
        return primary, None
    return primary, runtime_image(flavor, spec.shadow.model.runtime or spec.model.runtime, settings)


def car_release(car: Car, train: str, settings: Settings) -> Release | None:
    """What the car runs (None: the car removes its flavor); images as the train recorded them."""
    if car.remove:
        return None
    if car.spec is None:
        name = snapshot_name(car.flavor, car.revision or "")
        raise SnapshotMissing(
            f"car {car.flavor}: snapshot {name} not found: the ControllerRevision that keeps "
            f"revision {car.revision}'s spec is missing; create a new Train for the flavor"
        )
    if car.image and (car.spec.shadow is None or car.shadow_image):
        image, shadow = car.image, car.shadow_image
    else:
        image, shadow = images_for(car.flavor, car.spec, settings)
        image, shadow = car.image or image, car.shadow_image or shadow
    spec = car.spec
    serving = serving_of(catalog_runtime(car.flavor, spec.model.runtime, settings))
    shadow_serving = None
    if spec.shadow is not None:
        runtime = spec.shadow.model.runtime or spec.model.runtime
        shadow_serving = serving_of(catalog_runtime(car.flavor, runtime, settings))
    return Release(
        car.flavor,
        spec,
        image,
        train,
        shadow_image=shadow,
        serving=serving,
        shadow_serving=shadow_serving,
    )


def staging_only(car: Car) -> bool:
    return car.spec is not None and car.spec.staging_only


def needs_approval(spec: TrainSpec) -> bool:
    """Flavor changes need a person; runtime releases and all-staging-only trains do not."""
    return not spec.runtime_release and not all(staging_only(c) for c in spec.cars)


def goes_to_production(car: Car) -> bool:
    return not staging_only(car)


def car_health(
    release: Release | None, flavor: str, stage: Stage, world: World, settings: Settings
) -> Health:
    place = world.stage(stage)
    if release is None:
        gone = not any(place.of(flavor))
        return Health(gone, gone, 0, 0, None if gone else f"{flavor} is being removed")
    namespace = stage_namespace(stage, settings.namespaces)
    traffic = settings.traffic if stage is Stage.PRODUCTION else None
    try:
        plan = render_stage(release, stage, namespace, traffic)
    except Exception as error:  # bad data or a bug: this car fails, the others go on
        return Health(False, False, 0, 0, f"cannot be rendered: {error}", stuck=True)
    return health(plan, place, flavor)
