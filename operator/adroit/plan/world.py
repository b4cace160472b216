"""What the operator observed, as plain values: the input of every plan.

Each collection is indexed once, on first use, so that every lookup a plan
makes per flavor or per train costs O(1): StageWorld by flavor, World's
trains by name, by the flavor an unfinished train carries, and by the latest
train that carried a flavor. A finished train costs its place in `trains`
and one look at each of its cars when World's index is built.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

from adroit.api.flavor import FlavorSpec, FlavorStatus
from adroit.api.train import (
    FINISHED,
    ON_THE_TRACKS,
    Car,
    CarState,
    CarStatus,
    Phase,
    TrainSpec,
    TrainStatus,
)
from adroit.plan.drift import Body
from adroit.plan.render import Release
from adroit.plan.revision import flavor_revision
from adroit.plan.stages import Role, Stage


def _build(obj: object, *indexes: str) -> None:
    """Read each cached_property once: built now, it is only looked up later."""
    for index in indexes:
        getattr(obj, index)


@dataclass(frozen=True)
class Workload:
    """A Deployment the operator manages, as observed."""

    name: str
    flavor: str
    role: str
    applied_hash: str
    release: Release | None  # None when its annotations cannot be read back
    replicas: int  # the live spec.replicas (which drift may have changed)
    ready_replicas: int
    available: bool
    problem: str | None = None  # why it is not available, when known
    stuck: bool = False  # Kubernetes gave up progressing it (ProgressDeadlineExceeded)
    available_replicas: int | None = None  # status.availableReplicas; None: not read
    body: Body | None = field(default=None, compare=False)  # None: compare the hash only
    added: tuple[str, ...] = ()  # fields of its spec that others set (drift.added_by_others)

    @property
    def available_count(self) -> int:
        return self.ready_replicas if self.available_replicas is None else self.available_replicas


@dataclass(frozen=True)
class Managed:
    """Any other object the operator manages in a stage (Service, PodDisruptionBudget, route)."""

    kind: str
    name: str
    flavor: str
    applied_hash: str
    target: str | None = None  # for a Service: the Deployment it selects
    body: Body | None = field(default=None, compare=False)  # None: compare the hash only
    added: tuple[str, ...] = ()  # fields of its spec that others set (drift.added_by_others)


@dataclass(frozen=True)
class Quota:
    """The memory a namespace's ResourceQuotas allow, and what is used of it, in MiB."""

    hard_mib: int
    used_mib: int

    @property
    def free_mib(self) -> int:
        return self.hard_mib - self.used_mib


_NOTHING: tuple[tuple[Workload, ...], tuple[Managed, ...]] = ((), ())


@dataclass(frozen=True)
class StageWorld:
    namespace: str
    workloads: tuple[Workload, ...] = ()
    others: tuple[Managed, ...] = ()
    quota: Quota | None = None

    @cached_property
    def _by_flavor(self) -> dict[str, tuple[tuple[Workload, ...], tuple[Managed, ...]]]:
        workloads: dict[str, list[Workload]] = {}
        others: dict[str, list[Managed]] = {}
        for w in self.workloads:
            workloads.setdefault(w.flavor, []).append(w)
        for o in self.others:
            others.setdefault(o.flavor, []).append(o)
        return {
            f: (tuple(workloads.get(f, ())), tuple(others.get(f, ())))
            for f in workloads.keys() | others.keys()
        }

    @cached_property
    def _workload_names(self) -> frozenset[str]:
        return frozenset(w.name for w in self.workloads)

    def of(self, flavor: str) -> tuple[tuple[Workload, ...], tuple[Managed, ...]]:
        """The flavor's Deployments and other objects in this stage."""
        return self._by_flavor.get(flavor, _NOTHING)

    def has(self, name: str) -> bool:
        """Whether a Deployment of that name is here."""
        return name in self._workload_names

    def routed(self, flavor: str) -> Workload | None:
        """The Deployment the flavor's stable Service sends its traffic to."""
        workloads, others = self.of(flavor)
        stable = next((o for o in others if o.kind == "Service" and o.name == flavor), None)
        if stable is None:
            return None
        return next((w for w in workloads if w.name == stable.target), None)

    def running(self, flavor: str) -> Workload | None:
        """What the flavor runs here: what its stable Service routes to, or, with that
        Service gone (drift), its one primary Deployment."""
        routed = self.routed(flavor)
        if routed is not None:
            return routed
        primaries = [w for w in self.of(flavor)[0] if w.role == Role.PRIMARY and w.release]
        return primaries[0] if len(primaries) == 1 else None

    def running_release(self, flavor: str) -> Release | None:
        """The release the flavor runs here, with its shadow's own image."""
        running = self.running(flavor)
        release = running.release if running is not None else None
        if release is None or release.spec.shadow is None or release.shadow_image is not None:
            return release
        # Written before Deployments carried the shadow's image: read what the shadow runs.
        for w in self.of(flavor)[0]:
            if w.role == Role.SHADOW and w.body is not None:
                containers = w.body.read().get("spec", {}).get("template", {}).get("spec", {})
                image = (containers.get("containers") or [{}])[0].get("image")
                if image:
                    return replace(release, shadow_image=image)
        return release

    def flavors(self) -> set[str]:
        return set(self._by_flavor)

    def indexed(self) -> "StageWorld":
        """This stage with its indexes built (see World.indexed)."""
        _build(self, "_by_flavor", "_workload_names")
        return self


@dataclass(frozen=True)
class FlavorView:
    name: str
    spec: FlavorSpec
    generation: int
    status: FlavorStatus
    deleting: bool = False
    has_finalizer: bool = True
    author: str | None = None
    resource_version: str = ""
    finalizers: tuple[str, ...] = ()
    # Every change of the spec, (revision, author), oldest first (adroit.dev/authors).
    changes: tuple[tuple[str, str], ...] = ()

    @cached_property
    def revision(self) -> str:
        """The spec's revision, hashed once per view (a view lives as long as its
        resourceVersion in the cache): forming a train looks at every flavor's."""
        return flavor_revision(self.spec)


@dataclass(frozen=True)
class UnreadableFlavor:
    """A Flavor whose spec this operator cannot read (written against another schema, say).

    Nothing of it is changed or removed until it can be read again: it is not gone.
    """

    name: str
    reason: str
    generation: int
    status: FlavorStatus
    resource_version: str = ""
    deleting: bool = False


@dataclass(frozen=True)
class ApprovalMark:
    """A valid approval annotation, as the kube layer judged it."""

    by: str | None
    groups: tuple[str, ...] = ()
    at: datetime | None = None


@dataclass(frozen=True)
class TrainView:
    name: str
    created_at: datetime
    spec: TrainSpec  # every car that does not remove carries its spec (the kube layer fills it)
    status: TrainStatus
    generation: int = 1
    approval: ApprovalMark | None = None
    abort_by: str | None = None  # set when the abort annotation is there
    abort: bool = False
    override_window: bool = False
    approval_problem: str | None = None  # why an approval annotation is not honoured
    approval_problem_reason: str = "ApprovalNotVerified"  # or ApprovalVoided: approve again
    override_problem: str | None = None
    resource_version: str = ""
    uid: str = ""
    # Operator-owned fields this train set without the operator's signature: not honoured.
    ignored_fields: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[datetime, str]:
        """First created, first served."""
        return (self.created_at, self.name)

    @property
    def finished(self) -> bool:
        return self.status.phase in FINISHED

    @cached_property
    def car_status(self) -> Mapping[str, CarStatus]:
        """Each car's status by flavor: looked up once per flavor and pass, so a train of
        2,000 cars must not be scanned each time."""
        return {c.flavor: c for c in self.status.cars}

    @cached_property
    def held(self) -> "Mapping[str, Held]":
        """Its cars by flavor. A finished train's view is kept as it is between passes, so
        this is built once for it, not with every snapshot of the world."""
        return {c.flavor: (self, c) for c in self.spec.cars}


Held = tuple[TrainView, Car]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one verification check (adroit.plan.verification judges it)."""

    kind: str  # prediction, load, metric, shadow
    name: str
    passed: bool
    reason: str  # why, in one CamelCase word ("" when it passed without remark)
    message: str  # for a person, with the numbers
    status_code: int | None = None
    latency_ms: int | None = None
    response: str | None = None  # an excerpt of the answer
    value: float | None = None  # the metric's value, the load's error %


@dataclass(frozen=True)
class CheckResults:
    """What a car's checks found in one verification round (the round ends at `until`)."""

    until: datetime
    verdicts: tuple[Verdict, ...] = ()
    finished: bool = False


class Remembered:
    """What the plan worked out in an earlier snapshot, kept while every input it was worked
    out from is the same object. The caches replace an object when it changes, and a train's
    cars are the same objects while its spec is: so a train of 2,000 cars renders and
    compares only the cars whose objects changed since its last step, not all of them."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, ...], tuple[tuple[object, ...], object]] = {}

    def get(self, key: tuple[str, ...], inputs: tuple[object, ...]) -> object | None:
        kept = self._kept.get(key)
        if kept is None or len(kept[0]) != len(inputs):
            return None
        same = all(a is b for a, b in zip(kept[0], inputs, strict=True))
        return kept[1] if same else None

    def put(self, key: tuple[str, ...], inputs: tuple[object, ...], value: object) -> None:
        self._kept[key] = (inputs, value)

    def keep_only(self, trains: set[str]) -> None:
        """Forget what was worked out for trains other than these (key[0] is the train)."""
        for key in [k for k in self._kept if k[0] not in trains]:
            del self._kept[key]


@dataclass(frozen=True)
class World:
    now: datetime
    flavors: dict[str, FlavorView] = field(default_factory=dict)
    trains: tuple[TrainView, ...] = ()
    staging: StageWorld = StageWorld("adroit-staging")
    production: StageWorld = StageWorld("adroit-production")
    # The API server's own message for a write of (flavor, stage) that it refused, or
    # why that write could not be computed; the train carrying the flavor fails that car.
    errors: Mapping[tuple[str, Stage], str] = field(default_factory=dict)
    # The ControllerRevisions (car spec snapshots) the operator made, by name: the spec each
    # keeps (None: it does not match its revision). Finished trains' cars are not resolved.
    snapshots: Mapping[str, FlavorSpec | None] = field(default_factory=dict)
    # Flavors that exist but cannot be read: left as they run.
    unreadable: Mapping[str, UnreadableFlavor] = field(default_factory=dict)
    # What the verification checks found, by (train, flavor) (adroit.kube.verifier runs them).
    checks: Mapping[tuple[str, str], CheckResults] = field(default_factory=dict)
    # What earlier snapshots worked out for each train's cars (the controller keeps one).
    remembered: Remembered = field(default_factory=Remembered, compare=False)

    def stage(self, stage: Stage) -> StageWorld:
        return self.staging if stage is Stage.STAGING else self.production

    def indexed(self) -> "World":
        """This world with every index built: the controller builds it off the event loop,
        so that no plan on the loop pays for a walk over 2,000 flavors or cars."""
        self.staging.indexed()
        self.production.indexed()
        for train in self.trains:
            _build(train, "car_status", "held")
        _build(
            self,
            "trains_by_name",
            "_on_tracks_cars",
            "_unfinished_cars",
            "_latest_cars",
            "_deployed_trains",
        )
        return self

    @cached_property
    def trains_by_name(self) -> dict[str, TrainView]:
        return {t.name: t for t in self.trains}

    @cached_property
    def on_tracks(self) -> TrainView | None:
        """The train between Staging and Promoting (there is at most one)."""
        moving = [t for t in self.trains if t.status.phase in ON_THE_TRACKS]
        return min(moving, key=lambda t: t.order) if moving else None

    @cached_property
    def _on_tracks_cars(self) -> dict[str, Car]:
        train = self.on_tracks
        return {c.flavor: c for c in train.spec.cars} if train is not None else {}

    @cached_property
    def _unfinished_cars(self) -> dict[str, tuple[Held, ...]]:
        found: dict[str, list[Held]] = {}
        for train in sorted(self.trains, key=lambda t: t.order):
            if not train.finished:
                for car in train.spec.cars:
                    found.setdefault(car.flavor, []).append((train, car))
        return {f: tuple(h) for f, h in found.items()}

    @cached_property
    def _latest_cars(self) -> dict[str, Held]:
        latest: dict[str, Held] = {}
        for train in sorted(self.trains, key=lambda t: t.order):
            latest.update(train.held)  # a later train's car replaces an earlier one's
        return latest

    def on_tracks_car(self, flavor: str, phase: Phase | None = None) -> Held | None:
        """The car of `flavor` on the train on the tracks (in `phase`, if given)."""
        train = self.on_tracks
        car = self._on_tracks_cars.get(flavor)
        if train is None or car is None or (phase is not None and train.status.phase != phase):
            return None
        return train, car

    def unfinished_cars(self, flavor: str) -> tuple[Held, ...]:
        """Every car of `flavor` on a train that has not finished, first created first."""
        return self._unfinished_cars.get(flavor, ())

    @cached_property
    def _deployed_trains(self) -> list[TrainView]:
        """Trains that ended Deployed, the latest first."""
        done = [t for t in self.trains if t.status.phase == Phase.DEPLOYED]
        return sorted(done, key=lambda t: t.order, reverse=True)

    def shipped_car(self, flavor: str) -> Held | None:
        """The car of `flavor` that the latest train to change its production put there.
        A look per Deployed train (each indexes its cars once), not a walk over every car:
        while nothing of a first rollout runs yet, every flavor asks."""
        for train in self._deployed_trains:
            held = train.held.get(flavor)
            state = train.car_status.get(flavor)
            if held is not None and state is not None and state.production == CarState.DEPLOYED:
                return held
        return None

    def latest_car(self, flavor: str) -> Held | None:
        """The car of `flavor` on the latest train that carried it, finished or not."""
        return self._latest_cars.get(flavor)

    def phase_of(self, train: str) -> Phase | None:
        view = self.trains_by_name.get(train)
        return view.status.phase if view is not None else None
