"""Stepping trains: each one through the state machine, first created first served."""

from dataclasses import dataclass, replace

from adroit.api.settings import Settings
from adroit.api.train import FINISHED, ON_THE_TRACKS, Phase, TrainStatus
from adroit.plan.machine import Machine, Notice
from adroit.plan.report import car_statuses, with_approval, with_conditions, within_room
from adroit.plan.stages import Stage
from adroit.plan.verification import with_check_failures
from adroit.plan.world import TrainView, World


@dataclass(frozen=True)
class TrainStep:
    status: TrainStatus
    notices: tuple[Notice, ...] = ()


def step_train(
    view: TrainView,
    world: World,
    settings: Settings,
    *,
    on_tracks: str | None = None,
    ahead: str | None = None,
) -> TrainStep:
    """The train's next status, given the train on the tracks and the one ahead in the queue."""
    if view.status.phase in FINISHED:
        return TrainStep(view.status)
    machine = Machine(view, world, settings, on_tracks, ahead)
    machine.status = with_approval(view, machine.status, world.now)
    machine.run()
    phase = machine.status.phase
    staging = machine.healths(Stage.STAGING) if phase in (Phase.STAGING, Phase.VERIFYING) else {}
    status = machine.status.model_copy(
        update={
            "cars": with_check_failures(
                car_statuses(view, machine.status, machine.failed, staging, machine.dropped),
                machine.check_failures,
            ),
            "car_count": len(view.spec.cars),
            "observed_generation": view.generation,
        }
    )
    status = with_conditions(view, status, world.now)
    return TrainStep(within_room(status), tuple(machine.notices))


def step_trains(world: World, settings: Settings) -> dict[str, TrainStep]:
    """The next status of every train whose status changes, first created first.

    Only the first in line may depart, and only when no train is on the tracks;
    a finished train is skipped at the cost of a look at its phase.
    """
    order = sorted(
        (t for t in world.trains if t.status.phase not in FINISHED),
        key=lambda t: (t.created_at, t.name),
    )
    on_tracks = next((t.name for t in order if t.status.phase in ON_THE_TRACKS), None)
    changed: dict[str, TrainStep] = {}
    first_queued: str | None = None
    for train in order:
        ahead = first_queued
        step = step_train(
            train,
            world,
            settings,
            on_tracks=on_tracks if on_tracks != train.name else None,
            ahead=ahead,
        )
        if step.status != train.status:
            changed[train.name] = step
            train = replace(train, status=step.status)
        if train.status.phase in ON_THE_TRACKS:
            on_tracks = train.name
        elif on_tracks == train.name:
            on_tracks = None
        if first_queued is None and (train.status.phase in (None, Phase.QUEUED)):
            first_queued = train.name
    return changed
