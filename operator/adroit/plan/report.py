"""A train's status report: per-car states, conditions for kubectl wait, the approval."""

from collections.abc import Mapping
from datetime import datetime

from adroit.api.conditions import ConditionStatus
from adroit.api.train import (
    FINISHED,
    STATUS_BYTES,
    Approval,
    CarState,
    CarStatus,
    Phase,
    TrainStatus,
    wire_bytes,
)
from adroit.plan.cars import goes_to_production, needs_approval
from adroit.plan.conditions import set_condition
from adroit.plan.converge import Health
from adroit.plan.runbook import Breach
from adroit.plan.world import TrainView


def car_statuses(
    view: TrainView,
    status: TrainStatus,
    failed: Mapping[str, str],
    staging: Mapping[str, Health],
    dropped: Mapping[str, Breach] | None = None,
) -> list[CarStatus]:
    """Each car's state in each stage; `failed` says which car failed and why, `dropped`
    which cars a runbook rule took out of the train (Failed in both stages, for good)."""
    phase = Phase(status.phase or Phase.QUEUED)
    cars = []
    for car in view.spec.cars:
        breach = (dropped or {}).get(car.flavor)
        if breach is not None:
            cars.append(
                CarStatus(
                    flavor=car.flavor,
                    staging=CarState.FAILED,
                    production=CarState.FAILED,
                    reason=breach.reason,
                    message=breach.message,
                )
            )
            continue
        reason = message = None
        if car.flavor in failed:
            reason, message = "Failed", failed[car.flavor]
        s = _staging_state(phase, staging.get(car.flavor), car.flavor in failed)
        if not goes_to_production(car):
            p, reason, message = (
                CarState.SKIPPED,
                reason or "StagingOnly",
                message or ("staging-only: never applied to production"),
            )
        else:
            p = _production_state(phase, car.flavor in failed and phase is Phase.FAILED)
        cars.append(
            CarStatus(flavor=car.flavor, staging=s, production=p, reason=reason, message=message)
        )
    return cars


# A car's status beside its texts, as JSON: its keys, the longest states, the punctuation.
_CAR_FRAME = 100
CAR_MESSAGE = 200  # characters of a car's message kept when the status runs short of room
CHECK_RESPONSE = 100  # characters of a failed check's answer kept then


def _car_bytes(car: CarStatus) -> int:
    size = _CAR_FRAME + len(car.flavor) + len(car.reason or "")
    if car.message is not None:
        size += wire_bytes(car.message)
    if car.check is not None:
        size += wire_bytes(car.check.to_wire())
    return size


def _shortened(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def within_room(status: TrainStatus) -> TrainStatus:
    """The status, its cars' messages shortened until it fits in STATUS_BYTES.

    Thousands of cars failed at once (a LimitRange that refuses every Deployment) must not
    make the status too large to be written: the train would be stuck where it is. First
    every message is cut to CAR_MESSAGE characters and a check's answer to CHECK_RESPONSE;
    if that is still too much, the last cars keep their reason but lose their message. The
    train's own message and history name the first failed car with the whole message.
    """
    rest = wire_bytes(status.model_copy(update={"cars": []}).to_wire())
    sizes = [_car_bytes(c) for c in status.cars]
    room = STATUS_BYTES - rest
    if sum(sizes) <= room:
        return status
    cars = []
    for car in status.cars:
        check = car.check
        if check is not None and check.response is not None:
            check = check.model_copy(
                update={"response": _shortened(check.response, CHECK_RESPONSE)}
            )
        cars.append(
            car.model_copy(update={"message": _shortened(car.message, CAR_MESSAGE), "check": check})
        )
    sizes = [_car_bytes(c) for c in cars]
    total = sum(sizes)
    for index in range(len(cars) - 1, -1, -1):
        if total <= room:
            break
        car = cars[index]
        if car.message is None and (car.check is None or car.check.response is None):
            continue
        check = car.check.model_copy(update={"response": None}) if car.check else None
        cars[index] = car.model_copy(update={"message": None, "check": check})
        total += _car_bytes(cars[index]) - sizes[index]
    return status.model_copy(update={"cars": cars})


def _staging_state(phase: Phase, h: Health | None, failed: bool) -> CarState:
    if failed:
        return CarState.FAILED
    if phase is Phase.QUEUED:
        return CarState.PENDING
    if phase is Phase.STAGING:
        return CarState.VERIFYING if h is not None and h.converged else CarState.APPLYING
    if phase is Phase.VERIFYING:
        return CarState.VERIFYING
    if phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED):
        return CarState.REVERTED
    return CarState.VERIFIED


def _production_state(phase: Phase, failed: bool) -> CarState:
    if failed:
        return CarState.FAILED
    if phase is Phase.PROMOTING:
        return CarState.APPLYING
    if phase is Phase.DEPLOYED:
        return CarState.DEPLOYED
    return CarState.PENDING


def _passed_verification(status: TrainStatus) -> bool:
    """The train's last verification ended well: it went on from Verifying to approval or
    production (not back to staging, nor rolled back from it)."""
    went_on = False
    for entry in status.history:
        if entry.phase == Phase.VERIFYING:
            went_on = False
        elif entry.phase in (Phase.AWAITING_APPROVAL, Phase.PROMOTING, Phase.DEPLOYED):
            went_on = True
        elif entry.phase in (Phase.QUEUED, Phase.STAGING):
            went_on = False
    return went_on


def with_conditions(view: TrainView, status: TrainStatus, now: datetime) -> TrainStatus:
    """The status with Verified, Approved, Deployed and Finished set from its phase."""
    phase = Phase(status.phase or Phase.QUEUED)
    verified = _passed_verification(status) and phase not in (
        Phase.QUEUED,
        Phase.STAGING,
        Phase.VERIFYING,
    )
    approval = status.approval
    if approval is not None:
        approved = (True, "Approved", f"approved by {approval.by or 'an unverified user'}")
    elif view.approval_problem:
        approved = (False, view.approval_problem_reason, view.approval_problem)
    elif not needs_approval(view.spec):
        approved = (False, "NotRequired", "this train needs no approval")
    else:
        approved = (False, "NotYetApproved", "no approval yet")
    message = status.message or ""
    conditions = status.conditions
    for type_, (ok, reason, text) in (
        (
            "Verified",
            (
                verified,
                "VerifiedInStaging" if verified else phase.value,
                "every car was healthy in staging" if verified else message,
            ),
        ),
        ("Approved", approved),
        ("Deployed", (phase is Phase.DEPLOYED, phase.value, message)),
        ("Finished", (phase in FINISHED, phase.value, message)),
    ):
        conditions = set_condition(
            conditions,
            type_,
            ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
            reason,
            text,
            now=now,
            generation=view.generation,
        )
    return status.model_copy(update={"conditions": conditions})


def with_approval(view: TrainView, status: TrainStatus, now: datetime) -> TrainStatus:
    """The status with the approval the annotation carries (dropped while it may still be)."""
    mark = view.approval
    current = status.approval
    if mark is None:
        if current is not None and status.phase not in FINISHED and status.phase != Phase.PROMOTING:
            return status.model_copy(update={"approval": None})
        return status
    if current is None or current.by != mark.by:
        approval = Approval(by=mark.by, groups=list(mark.groups), at=mark.at or now)
        return status.model_copy(update={"approval": approval})
    return status
