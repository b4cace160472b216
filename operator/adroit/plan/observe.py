"""Status computed from what the operator observed, before any train has run."""

from datetime import datetime

from adroit.api.conditions import ConditionStatus
from adroit.api.flavor import FlavorSpec, FlavorStatus
from adroit.api.train import HistoryEntry, Phase, TrainSpec, TrainStatus
from adroit.plan.conditions import set_condition
from adroit.plan.revision import flavor_revision


def observe_flavor(
    spec: FlavorSpec, generation: int, status: FlavorStatus, *, now: datetime
) -> FlavorStatus:
    """Record the generation and revision seen, and whether the spec waits for a train."""
    revision = flavor_revision(spec)
    target = status.staging if spec.staging_only else status.production
    running = target.revision if target else None
    if running == revision:
        pending = (ConditionStatus.FALSE, "UpToDate", f"revision {revision} is running")
    else:
        pending = (
            ConditionStatus.TRUE,
            "AwaitingTrain",
            f"revision {revision} waits for a release train",
        )
    conditions = set_condition(
        status.conditions, "PendingChanges", *pending, now=now, generation=generation
    )
    return status.model_copy(
        update={"observed_generation": generation, "revision": revision, "conditions": conditions}
    )


def observe_new_train(
    spec: TrainSpec, generation: int, status: TrainStatus, *, now: datetime
) -> TrainStatus:
    """A train the operator sees for the first time is Queued, with that in its history."""
    update: dict[str, object] = {"observed_generation": generation, "car_count": len(spec.cars)}
    if status.phase is None:
        update |= {
            "phase": Phase.QUEUED,
            "reason": "Created",
            "message": f"queued with {len(spec.cars)} car(s)",
            "history": [
                *status.history,
                HistoryEntry(phase=Phase.QUEUED, at=now, reason="Created", message="train created"),
            ],
        }
    return status.model_copy(update=update)
