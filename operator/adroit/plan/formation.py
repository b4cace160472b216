"""Trains that form by themselves, the spec snapshots they refer to, and what is pruned.

A change rides again only while no unfinished train carries it; a revision
(or removal) whose latest train for the flavor ended RolledBack, Aborted or
Failed does not ride again by itself: it would fail again (README). Anything
else that differs from what runs forms a train, a revert to an older revision
included.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adroit.api import names
from adroit.api.flavor import FlavorSpec
from adroit.api.settings import Settings
from adroit.api.train import (
    ENDED_BADLY,
    MAX_AUTHORS,
    MAX_CARS,
    SPEC_BYTES,
    USERNAME_LIMIT,
    Car,
    TrainSpec,
    wire_bytes,
)
from adroit.plan.authorship import authors_since
from adroit.plan.cars import CarError, car_release, images_for, snapshot_name
from adroit.plan.render import Manifest, Release
from adroit.plan.revision import flavor_revision
from adroit.plan.runbook import dropped_from
from adroit.plan.world import FlavorView, World

REVISION_LABEL = "adroit.dev/revision"


@dataclass(frozen=True)
class Formation:
    """A train to create, after the ControllerRevisions its cars refer to."""

    train: Manifest
    revisions: tuple[Manifest, ...]  # create first; an existing one of that name is the same

    @property
    def name(self) -> str:
        return str(self.train["metadata"]["name"])


@dataclass(frozen=True)
class Pruning:
    """Finished trains beyond trainHistoryLimit, and snapshots no kept train refers to."""

    trains: tuple[str, ...] = ()
    revisions: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.trains or self.revisions)


def controller_revision(flavor: str, spec: FlavorSpec, namespace: str) -> Manifest:
    """The apps/v1 ControllerRevision that keeps a car's spec: named FLAVOR-REVISION."""
    revision = flavor_revision(spec)
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": snapshot_name(flavor, revision),
            "namespace": namespace,
            "labels": {
                names.MANAGED_BY: names.MANAGED_BY_VALUE,
                names.FLAVOR_LABEL: flavor,
                REVISION_LABEL: revision,
            },
        },
        "data": spec.to_wire(),
        "revision": 1,
    }


def snapshot_spec(revision: str, data: Any) -> FlavorSpec | None:
    """The spec a ControllerRevision's data holds, if it is the one `revision` names."""
    try:
        spec = FlavorSpec.model_validate(data)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None
    return spec if flavor_revision(spec) == revision else None


def snapshot_matches(spec: FlavorSpec, revision: str) -> bool:
    """Whether a snapshot's spec is the one the car's revision names."""
    return flavor_revision(spec) == revision


def _ended_badly(world: World, flavor: str, revision: str | None, image: str | None) -> bool:
    """Whether the latest train that carried `flavor` carried this change and ended badly."""
    latest = world.latest_car(flavor)
    if latest is None:
        return False
    train, car = latest
    if train.status.phase not in ENDED_BADLY and not dropped_from(train, flavor):
        return False
    if revision is None:
        return car.remove
    return (
        not car.remove
        and car.revision == revision
        and (image is None or (train.spec.runtime_release and car.image == image))
    )


def _carried(world: World, flavor: str, revision: str | None, image: str | None) -> bool:
    """Whether an unfinished train carries this change (revision None: the removal)."""
    for _, car in world.unfinished_cars(flavor):
        if revision is None:
            if car.remove:
                return True
        elif car.revision == revision and (image is None or car.image == image or not car.image):
            return True
    return False


def removal_stuck(world: World, flavor: str) -> bool:
    """A deleted flavor whose removal train ended badly: it waits for a person."""
    return _ended_badly(world, flavor, None, None) and not _carried(world, flavor, None, None)


def revision_stuck(world: World, flavor: str, revision: str) -> bool:
    """A revision whose train ended badly: it does not ride again by itself."""
    return _ended_badly(world, flavor, revision, None) and not _carried(
        world, flavor, revision, None
    )


def _since(view: FlavorView) -> datetime | None:
    return next(
        (c.last_transition_time for c in view.status.conditions if c.type == "PendingChanges"),
        None,
    )


def _recordable(author: str | None) -> str | None:
    """An author a train can record. The webhook refuses longer names; one written past it
    is left out rather than let the train it rides be refused, and every train after it
    (an approver with such a name is refused: no author of the change approves it)."""
    return author if author is not None and len(author) <= USERNAME_LIMIT else None


def _authors(view: FlavorView, running: str | None) -> list[str] | None:
    """Everyone who changed the flavor since the revision that runs (and its last author)."""
    authors = [a for a in authors_since(view.changes, running) if _recordable(a)]
    author = _recordable(view.author)
    if author and author not in authors:
        authors.append(author)
    return authors[-MAX_AUTHORS:] or None


def restorable(world: World, flavor: str, settings: Settings) -> Release | None:
    """What production runs for a flavor whose production Deployment is gone (deleted by
    hand): what the latest train to change its production put there, to be put back like
    any drift. None: nothing to put back (never shipped, removed, being deleted, or the
    snapshot of that spec is gone), and a change of the flavor waits for a train."""
    view = world.flavors.get(flavor)
    shipped = world.shipped_car(flavor)
    if view is None or view.deleting or shipped is None:
        return None
    train, car = shipped
    if car.remove:
        return None
    if car.spec is None:  # a finished train's car: its spec is in its snapshot
        spec = world.snapshots.get(snapshot_name(flavor, car.revision or ""))
        if spec is None:
            return None
        car = car.model_copy(update={"spec": spec})
    try:
        return car_release(car, train.name, settings)
    except CarError:
        return None


def _change(view: FlavorView, world: World, settings: Settings) -> tuple[Car, bool] | None:
    """The car a flavor's change needs, and whether it changes the flavor's definition."""
    name = view.name
    if view.deleting:
        if any(world.production.of(name)) and not (
            _carried(world, name, None, None) or _ended_badly(world, name, None, None)
        ):
            return Car(flavor=name, remove=True, author=_recordable(view.author)), True
        return None
    revision = view.revision
    home = world.staging if view.spec.staging_only else world.production
    running = home.running_release(name)
    if running is None and not view.spec.staging_only:
        running = restorable(world, name, settings)  # put back at once, no train
    image: str | None
    shadow_image: str | None
    try:
        image, shadow_image = images_for(name, view.spec, settings)
    except CarError:  # the train will fail with a clear reason; it still forms
        image = shadow_image = None
    car = Car(flavor=name, revision=revision)
    if running is None or running.revision != revision:
        if _carried(world, name, revision, None) or _ended_badly(world, name, revision, None):
            return None
        update = {
            "image": image,
            "shadow_image": shadow_image,
            "author": _recordable(view.author),
            "authors": _authors(view, running.revision if running is not None else None),
        }
        return car.model_copy(update=update), True
    if image is None:
        return None
    new_image = running.image != image
    new_shadow = running.shadow_image is not None and running.shadow_image != shadow_image
    if not (new_image or new_shadow):
        return None
    if _carried(world, name, revision, image) or _ended_badly(world, name, revision, image):
        return None
    return car.model_copy(update={"image": image, "shadow_image": shadow_image}), False


# What a spec holds beside its cars: the engineer (a username at most), runtimeRelease,
# the keys and brackets.
_SPEC_FRAME = USERNAME_LIMIT + 100


def _fitting(cars: list[Car]) -> int:
    """How many of the cars, in order, a train's spec holds within SPEC_BYTES (at least one:
    a single car is far smaller)."""
    used = _SPEC_FRAME
    for count, car in enumerate(cars):
        used += wire_bytes(car.to_wire()) + 1
        if used > SPEC_BYTES:
            return max(count, 1)
    return len(cars)


def form_train(world: World, settings: Settings) -> Formation | None:
    """A new train with the changes no train carries, when no train is on the tracks.

    At most MAX_CARS cars, and no more than fit in SPEC_BYTES, earliest changes first: the
    rest board the next train. Its cars carry no spec: each names its ControllerRevision,
    made first.
    """
    if world.on_tracks is not None:
        return None
    changes: list[tuple[datetime | None, Car, FlavorView, bool]] = []
    for view in world.flavors.values():
        found = _change(view, world, settings)
        if found is not None:
            car, definition = found
            since = _since(view) if definition and not car.remove else None
            changes.append((since, car, view, definition))
    if not changes:
        return None
    changes.sort(key=lambda c: (c[0] is None, c[0] or world.now, c[1].flavor))
    changes = changes[: _fitting([car for _, car, _, _ in changes[:MAX_CARS]])]
    first = changes[0][2]
    engineer = _recordable(first.author) or first.spec.owner
    spec = TrainSpec(
        engineer=engineer,
        cars=[c for _, c, _, _ in changes],
        runtime_release=not any(definition for *_, definition in changes),
    )
    name = base = f"train-{world.now:%Y%m%d-%H%M%S}"
    suffix = 1
    while name in world.trains_by_name:
        suffix += 1
        name = f"{base}-{suffix}"
    control = settings.namespaces.control
    revisions = tuple(
        controller_revision(view.name, view.spec, control)
        for _, car, view, _ in changes
        if not car.remove
    )
    train = {
        "apiVersion": names.API_VERSION,
        "kind": "Train",
        "metadata": {
            "name": name,
            "namespace": control,
            "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE},
        },
        "spec": spec.to_wire(),
    }
    return Formation(train=train, revisions=revisions)


def prune(world: World, settings: Settings) -> Pruning:
    """Finished trains beyond trainHistoryLimit (oldest first; never an unfinished one, nor
    one a flavor's stuck change is remembered by), and the ControllerRevisions that
    neither a kept train nor a Flavor's current spec refers to. (The snapshot of a
    current spec may be one a train forms with in this very pass, from a world read
    before it: a revert to a spec whose train is pruned now, or a formation whose Train
    create failed after its snapshots were made.)"""
    finished = sorted((t for t in world.trains if t.finished), key=lambda t: t.order)
    limit = settings.train_history_limit
    # A train where a flavor's change ended badly is what keeps that change from riding
    # again by itself: it stays, beyond the limit, while the flavor still asks for it.
    remembered = {
        held[0].name
        for name, view in world.flavors.items()
        if (
            removal_stuck(world, name)
            if view.deleting
            else revision_stuck(world, name, view.revision)
        )
        and (held := world.latest_car(name)) is not None
    }
    gone = [t for t in finished[: max(0, len(finished) - limit)] if t.name not in remembered]
    gone_names = {t.name for t in gone}
    referred = {
        snapshot_name(c.flavor, c.revision)
        for t in world.trains
        if t.name not in gone_names
        for c in t.spec.cars
        if c.revision
    }
    referred |= {snapshot_name(name, view.revision) for name, view in world.flavors.items()}
    return Pruning(
        trains=tuple(t.name for t in gone),
        revisions=tuple(sorted(set(world.snapshots) - referred)),
    )
