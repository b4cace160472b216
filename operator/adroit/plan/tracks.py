"""The view of the tracks: what is on them, what waits and why, the window, pending changes.

One pure function of what was observed (the Trains and Flavors as a World, the
deploy window's state, the time) for the people who watch the tracks:
`kubectl adroit status` and `why`, and the dashboard. It reads what the
operator wrote in each status and never decides anything itself.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from adroit.api import names
from adroit.api.train import ENDED_BADLY, FINISHED, CarState, HistoryEntry, Phase, TrainStatus
from adroit.plan.machine import since
from adroit.plan.window import WindowState
from adroit.plan.world import FlavorView, TrainView, World

RECENT = 5  # finished trains shown, newest first


@dataclass(frozen=True)
class CarLine:
    flavor: str
    revision: str | None
    remove: bool
    staging: str
    production: str
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class TrainLine:
    """One train as a person reads it: where it is, since when, what it waits for."""

    name: str
    phase: str
    engineer: str
    created_at: datetime
    since: datetime  # when it entered its phase (its creation while it never moved)
    reason: str
    message: str
    until: datetime | None  # the next time something happens by itself, if known
    car_count: int
    staging: Mapping[str, int]  # car state -> how many cars are in it
    production: Mapping[str, int]
    cars: tuple[CarLine, ...]
    history: tuple[HistoryEntry, ...]
    needs_approval: bool
    approved_by: str | None
    may_not_approve: tuple[str, ...]  # separation of duties: engineer, creator, authors
    requested: tuple[str, ...]  # guarded annotations set: approved, abort, override-window
    position: int | None = None  # in the queue, from 1


@dataclass(frozen=True)
class PendingChange:
    flavor: str
    reason: str
    message: str
    since: datetime | None


@dataclass(frozen=True)
class WindowLine:
    """The deploy window; `open` is None when the settings could not be read."""

    open: bool | None
    closes_at: datetime | None = None
    opens_at: datetime | None = None
    why_closed: str = ""


@dataclass(frozen=True)
class Tracks:
    now: datetime
    window: WindowLine
    on_tracks: TrainLine | None
    queue: tuple[TrainLine, ...]
    recent: tuple[TrainLine, ...]
    pending: tuple[PendingChange, ...]
    flavor_count: int
    train_count: int


@dataclass(frozen=True)
class Whereabouts:
    """Where a flavor's latest change is, and the trains that carried the flavor."""

    flavor: str
    revision: str
    where: str  # a phase of the train carrying it, or AwaitingTrain, Shipped, NotObserved
    message: str
    train: str | None
    since: datetime | None
    trains: tuple[tuple[TrainLine, CarLine], ...]  # newest first


# --- trains ---------------------------------------------------------------


def _annotation_words(annotations: Mapping[str, str]) -> tuple[str, ...]:
    """The guarded annotations set to "true", by their short names."""
    keys = (names.APPROVED, names.ABORT, names.OVERRIDE_WINDOW)
    return tuple(k.split("/")[1] for k in keys if annotations.get(k) == "true")


def _needs_approval(status: TrainStatus) -> bool:
    approved = next((c for c in status.conditions if c.type == "Approved"), None)
    return approved is None or approved.reason != "NotRequired"


def train_line(
    view: TrainView,
    *,
    annotations: Mapping[str, str] | None = None,
    created_by: str | None = None,
    separation_of_duties: bool = True,
    position: int | None = None,
) -> TrainLine:
    """One train for people: its status as the operator wrote it, read plainly."""
    status = view.status
    phase = Phase(status.phase or Phase.QUEUED)
    cars_status = {c.flavor: c for c in status.cars}
    cars = []
    for car in view.spec.cars:
        seen = cars_status.get(car.flavor)
        cars.append(
            CarLine(
                flavor=car.flavor,
                revision=car.revision,
                remove=car.remove,
                staging=str(seen.staging if seen else CarState.PENDING),
                production=str(seen.production if seen else CarState.PENDING),
                reason=seen.reason if seen else None,
                message=seen.message if seen else None,
            )
        )
    excluded: list[str] = []
    if separation_of_duties:
        people = [view.spec.engineer, created_by]
        for car in view.spec.cars:
            people += [car.author, *(car.authors or ())]
        excluded = list(dict.fromkeys(p for p in people if p))
    return TrainLine(
        name=view.name,
        phase=phase.value,
        engineer=view.spec.engineer,
        created_at=view.created_at,
        since=since(status, phase) or view.created_at,
        reason=status.reason or "",
        message=status.message or "",
        until=status.deadline or status.verifying_until or status.window_opens_at,
        car_count=len(view.spec.cars),
        staging=dict(Counter(c.staging for c in cars)),
        production=dict(Counter(c.production for c in cars)),
        cars=tuple(cars),
        history=tuple(status.history),
        needs_approval=_needs_approval(status),
        approved_by=status.approval.by if status.approval else None,
        may_not_approve=tuple(excluded),
        requested=_annotation_words(annotations or {}),
        position=position,
    )


# --- the window and the pending changes -------------------------------------------


def window_line(state: WindowState | None, trains: Sequence[TrainView]) -> WindowLine:
    """The window from the settings when known, else what a waiting train says of it."""
    if state is not None:
        return WindowLine(state.open, state.closes_at, state.opens_at, state.why_closed)
    for train in trains:
        if train.status.window_opens_at is not None and train.status.phase not in FINISHED:
            return WindowLine(False, None, train.status.window_opens_at, train.status.message or "")
    return WindowLine(None)


def pending_change(view: FlavorView) -> PendingChange | None:
    """The flavor's change that has not shipped, as the operator reported it, or one the
    operator has not seen yet."""
    if view.status.observed_generation != view.generation:
        return PendingChange(
            view.name,
            "NotObserved",
            f"generation {view.generation} is not yet seen by the operator",
            None,
        )
    condition = next((c for c in view.status.conditions if c.type == "PendingChanges"), None)
    if condition is None or condition.status != "True":
        return None
    return PendingChange(
        view.name, condition.reason, condition.message, condition.last_transition_time
    )


# --- the whole view -------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What a train's status does not say: its guarded annotations, who created it (both by
    train name), and whether separation of duties is on (the settings)."""

    annotations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    created_by: Mapping[str, str] = field(default_factory=dict)
    separation_of_duties: bool = True

    def line(self, view: TrainView, position: int | None = None) -> TrainLine:
        return train_line(
            view,
            annotations=self.annotations.get(view.name),
            created_by=self.created_by.get(view.name),
            separation_of_duties=self.separation_of_duties,
            position=position,
        )


def look_at_tracks(
    world: World,
    window: WindowState | None,
    reading: Reading | None = None,
    recent: int = RECENT,
    settled: int = 0,
) -> Tracks:
    """The tracks at `world.now`: the train on them, the queue in order, the last finished
    trains, the flavors whose change has not shipped, and the deploy window. `settled`
    counts flavors left out of the world because their status says nothing is pending."""
    line = (reading or Reading()).line
    order = sorted(world.trains, key=lambda t: t.order)
    waiting = [t for t in order if t.status.phase in (None, Phase.QUEUED)]
    finished = [t for t in order if t.finished][::-1][:recent]
    pending = (pending_change(f) for f in sorted(world.flavors.values(), key=lambda f: f.name))
    moving = world.on_tracks
    return Tracks(
        now=world.now,
        window=window_line(window, order),
        on_tracks=line(moving) if moving is not None else None,
        queue=tuple(line(t, i) for i, t in enumerate(waiting, start=1)),
        recent=tuple(line(t) for t in finished),
        pending=tuple(p for p in pending if p is not None),
        flavor_count=len(world.flavors) + settled,
        train_count=len(world.trains),
    )


# --- one flavor ---------------------------------------------------------------


def _waits(line: TrainLine) -> str:
    if line.phase == Phase.AWAITING_APPROVAL and line.may_not_approve:
        return (
            f"{line.message}; any approver but {', '.join(line.may_not_approve)} may approve: "
            f"kubectl adroit approve {line.name}"
        )
    return line.message


def where_is(view: FlavorView, world: World, reading: Reading | None = None) -> Whereabouts:
    """Where the flavor's latest change is: not yet on a train, queued, in staging, waiting
    for approval, promoting, shipped, or ended badly (and why), with every train that
    carried the flavor."""
    reading = reading or Reading()
    revision = view.revision
    home = view.status.staging if view.spec.staging_only else view.status.production
    stage = "staging" if view.spec.staging_only else "production"
    carried = []
    for train in sorted(world.trains, key=lambda t: t.order, reverse=True):
        if any(c.flavor == view.name for c in train.spec.cars):
            seen = reading.line(train)
            carried.append((seen, next(c for c in seen.cars if c.flavor == view.name)))

    def found(where: str, message: str, train: str | None, at: datetime | None) -> Whereabouts:
        return Whereabouts(view.name, revision, where, message, train, at, tuple(carried))

    if view.status.observed_generation != view.generation:
        return found(
            "NotObserved",
            f"generation {view.generation} (revision {revision}) is not yet seen by the operator",
            None,
            None,
        )

    def wanted(car: CarLine) -> bool:
        return car.remove if view.deleting else car.revision == revision

    change = "the removal" if view.deleting else f"revision {revision}"
    for line, car in carried:
        if line.phase in FINISHED or not wanted(car):
            continue
        if line.phase == Phase.QUEUED:
            text = f"{change} rides train {line.name}, Queued: {line.message}"
        elif line.phase in (Phase.STAGING, Phase.VERIFYING):
            text = (
                f"{change} is in staging on train {line.name} (car {car.staging}): {line.message}"
            )
        else:
            text = f"{change} rides train {line.name}, {line.phase}: {_waits(line)}"
        return found(line.phase, text, line.name, line.since)
    if not view.deleting and home is not None and home.revision == revision:
        by = home.train
        deployed = next((t for t, _ in carried if t.name == by), None)
        return found(
            "Shipped",
            f"{change} runs in {stage}" + (f" (train {by})" if by else ""),
            by,
            deployed.since if deployed is not None else None,
        )
    last = next(((t, c) for t, c in carried if wanted(c)), None)
    if last is not None:
        line, car = last
        ended = line.phase in ENDED_BADLY or car.production == CarState.FAILED
        if ended:
            why = car.message or line.message
            where = line.phase if line.phase in ENDED_BADLY else str(CarState.FAILED)
            return found(
                where,
                f"{change} rode train {line.name}, which ended {where}: {why}. It does not ride "
                "again by itself: change the Flavor, or create a Train to try it again",
                line.name,
                line.since,
            )
    pending = pending_change(view)
    text = f"{change} is not yet on a train: it waits for a release train"
    if world.on_tracks is not None:
        moving = world.on_tracks
        text += f" (train {moving.name} is on the tracks, {moving.status.phase})"
    if pending is None:
        return found("AwaitingTrain", text, None, None)
    return found(pending.reason, f"{text}: {pending.message}", None, pending.since)


# --- data for -o json and the dashboard ---------------------------------------


def as_data(value: Any) -> Any:
    """Any of the above as plain JSON data: camelCase keys, times in RFC 3339."""
    if is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): as_data(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, HistoryEntry):
        return value.to_wire()
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
