"""The train state machine: one pure step from what was observed to the next status.

Every call either moves the train to its next phase or says, in status.reason
and status.message, what it waits for. Time comes from World.now.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from adroit.api.conditions import ConditionStatus
from adroit.api.flavor import FlavorSpec
from adroit.api.settings import Settings
from adroit.api.train import (
    FINISHED,
    Approval,
    Car,
    CarState,
    CarStatus,
    HistoryEntry,
    Phase,
    TrainSpec,
    TrainStatus,
)
from adroit.plan.conditions import set_condition
from adroit.plan.converge import Health, health
from adroit.plan.quantity import mebibytes
from adroit.plan.render import Release, Stage, render_stage
from adroit.plan.window import can_start_promotion, next_promotion_start, window_state
from adroit.plan.world import TrainView, World

NOTIFY_ENGINEER = frozenset(
    {Phase.AWAITING_APPROVAL, Phase.DEPLOYED, Phase.ROLLED_BACK, Phase.ABORTED, Phase.FAILED}
)


@dataclass(frozen=True)
class Notice:
    """Something to tell people: always an Event, and the engineer when `notify`."""

    type: str  # Normal or Warning
    reason: str
    message: str
    notify: bool = False


@dataclass(frozen=True)
class TrainStep:
    status: TrainStatus
    notices: tuple[Notice, ...] = ()


class CarError(ValueError):
    """A car that cannot run with these settings."""


def runtime_image(flavor: str, runtime: str | None, settings: Settings) -> str:
    """The catalog's image for a runtime (the settings' default when None)."""
    runtime = runtime or settings.default_runtime
    if runtime is None or runtime not in settings.runtimes:
        known = ", ".join(sorted(settings.runtimes))
        raise CarError(
            f"car {flavor}: runtime {runtime or '(none)'} is not in the settings' runtime "
            f"catalog ({known}): name one of those in the Flavor's model.runtime"
        )
    return settings.runtimes[runtime]


def images_for(flavor: str, spec: FlavorSpec, settings: Settings) -> tuple[str, str | None]:
    """The primary's image and, with a shadow, the shadow's (its runtime, else the primary's)."""
    primary = runtime_image(flavor, spec.model.runtime, settings)
    if spec.shadow is None:
        return primary, None
    return primary, runtime_image(flavor, spec.shadow.model.runtime or spec.model.runtime, settings)


def car_release(car: Car, train: str, settings: Settings) -> Release | None:
    """What the car runs (None: the car removes its flavor); images as the train recorded them."""
    if car.remove or car.spec is None:
        return None
    if car.image and (car.spec.shadow is None or car.shadow_image):
        image, shadow = car.image, car.shadow_image
    else:
        image, shadow = images_for(car.flavor, car.spec, settings)
        image, shadow = car.image or image, car.shadow_image or shadow
    return Release(car.flavor, car.spec, image, train, shadow_image=shadow)


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
    namespace = (
        settings.namespaces.staging if stage is Stage.STAGING else settings.namespaces.production
    )
    traffic = settings.traffic if stage is Stage.PRODUCTION else None
    return health(render_stage(release, stage, namespace, traffic), place, flavor)


def since(status: TrainStatus, phase: Phase) -> datetime | None:
    for entry in reversed(status.history):
        if entry.phase == phase:
            return entry.at
    return None


def _enter(
    status: TrainStatus,
    phase: Phase,
    reason: str,
    message: str,
    now: datetime,
    by: str | None = None,
) -> TrainStatus:
    entry = HistoryEntry(phase=phase, at=now, reason=reason, message=message, by=by)
    return status.model_copy(
        update={
            "phase": phase,
            "reason": reason,
            "message": message,
            "window_opens_at": None,
            "history": [*status.history, entry],
        }
    )


def _wait(
    status: TrainStatus, reason: str, message: str, opens_at: datetime | None = None
) -> TrainStatus:
    return status.model_copy(
        update={"reason": reason, "message": message, "window_opens_at": opens_at}
    )


def _fmt(moment: datetime | None, settings: Settings) -> str:
    if moment is None:
        return "not within a year"
    return moment.astimezone(settings.deploy_window.zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _seconds(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


class _Machine:
    def __init__(
        self,
        view: TrainView,
        world: World,
        settings: Settings,
        on_tracks: str | None,
        ahead: str | None,
    ) -> None:
        self.view, self.world, self.settings = view, world, settings
        self.on_tracks, self.ahead = on_tracks, ahead
        self.now = world.now
        self.status = view.status
        self.notices: list[Notice] = []
        self.failed: dict[str, str] = {}  # flavor -> why, for the car that failed

    # --- bookkeeping -----------------------------------------------------

    def enter(
        self,
        phase: Phase,
        reason: str,
        message: str,
        *,
        by: str | None = None,
        warning: bool = False,
    ) -> None:
        self.status = _enter(self.status, phase, reason, message, self.now, by)
        engineer = self.view.spec.engineer
        text = f"train {self.view.name} is {phase.value} ({reason}): {message}"
        if phase in NOTIFY_ENGINEER:
            text = f"@{engineer}: {text}"
        self.notices.append(
            Notice(
                "Warning" if warning else "Normal", reason, text, notify=phase in NOTIFY_ENGINEER
            )
        )

    def wait(self, reason: str, message: str, opens_at: datetime | None = None) -> None:
        self.status = _wait(self.status, reason, message, opens_at)

    def releases(self) -> dict[str, Release | None]:
        return {
            c.flavor: car_release(c, self.view.name, self.settings) for c in self.view.spec.cars
        }

    def healths(self, stage: Stage) -> dict[str, Health]:
        cars = self.view.spec.cars
        if stage is Stage.PRODUCTION:
            cars = [c for c in cars if goes_to_production(c)]
        releases = self.releases()
        return {
            c.flavor: car_health(releases[c.flavor], c.flavor, stage, self.world, self.settings)
            for c in cars
        }

    def window_open(self) -> bool:
        return self.view.override_window or window_state(self.settings.deploy_window, self.now).open

    def may_promote(self) -> bool:
        lead = self.settings.timeouts.promotion_lead_time
        return self.view.override_window or can_start_promotion(
            self.settings.deploy_window, self.now, lead
        )

    # --- phases ----------------------------------------------------------

    def run(self) -> None:
        if self.status.phase is None:
            self.enter(Phase.QUEUED, "Created", f"queued with {len(self.view.spec.cars)} car(s)")
        phase = Phase(self.status.phase or Phase.QUEUED)
        if phase in FINISHED:
            return
        if self.view.abort:
            who = f" by {self.view.abort_by}" if self.view.abort_by else ""
            note = (
                " (production keeps what each flavor runs now)" if phase is Phase.PROMOTING else ""
            )
            self.enter(
                Phase.ABORTED,
                "AbortRequested",
                f"aborted{who}; staging is reverted{note}",
                by=self.view.abort_by,
                warning=True,
            )
            return
        try:
            self.releases()
        except CarError as error:
            self.enter(Phase.FAILED, "UnknownRuntime", str(error), warning=True)
            return
        getattr(self, phase.name.lower())()

    def queued(self) -> None:
        if self.on_tracks:
            self.wait("WaitingForTrack", f"train {self.on_tracks} is on the tracks")
        elif self.ahead:
            self.wait("WaitingInQueue", f"behind train {self.ahead}, which was created first")
        elif not self.window_open():
            state = window_state(self.settings.deploy_window, self.now)
            if self.view.override_problem:
                self.wait("OverrideNotVerified", self.view.override_problem, state.opens_at)
                return
            self.wait(
                "OutsideDeployWindow",
                f"{state.why_closed}; departs when the window opens at "
                f"{_fmt(state.opens_at, self.settings)} (or annotate "
                "adroit.dev/override-window=true)",
                state.opens_at,
            )
        else:
            self.enter(
                Phase.STAGING, "Departed", f"applying {len(self.view.spec.cars)} car(s) to staging"
            )

    def _window_closed(self) -> bool:
        if self.window_open():
            return False
        self.enter(
            Phase.QUEUED,
            "WindowClosed",
            "the deploy window closed before promotion: cars are taken out of staging, "
            "and the train departs again when the window opens",
            warning=True,
        )
        return True

    def _staging_broken(self, reason: str, during: str) -> bool:
        broken = {f: h for f, h in self.healths(Stage.STAGING).items() if not h.available}
        if not broken:
            return False
        for flavor, h in broken.items():
            self.failed[flavor] = f"became unavailable {during}: {h.problem}"
        flavor, h = next(iter(broken.items()))
        self.enter(
            Phase.ROLLED_BACK,
            reason,
            f"car {flavor} in staging became unavailable {during}: {h.problem}; "
            "staging is put back to what production runs",
            warning=True,
        )
        return True

    def _rolled_out(
        self,
        stage: Stage,
        entered: Phase,
        timeout: timedelta,
        *,
        failed: Phase,
        reason: str,
        consequence: str,
    ) -> timedelta | None:
        """How long every car took to converge in `stage`; None while waiting or when a car
        cannot (then the train ends in `failed`, saying which car and why)."""
        healths = self.healths(stage)
        elapsed = self.now - (since(self.status, entered) or self.now)
        if all(h.converged for h in healths.values()):
            return elapsed
        failing = {
            f: h for f, h in healths.items() if not h.converged and (h.stuck or elapsed > timeout)
        }
        if failing:
            for flavor, h in failing.items():
                self.failed[flavor] = (
                    f"not Available in {stage} within {_seconds(timeout)}: {h.problem}"
                )
            flavor, h = next(iter(failing.items()))
            self.enter(
                failed,
                reason,
                f"car {flavor} in {stage}: not Available within {_seconds(timeout)}: "
                f"{h.problem}; {consequence}",
                warning=True,
            )
            return None
        done = sum(h.converged for h in healths.values())
        self.wait(
            f"WaitingFor{stage.value.capitalize()}",
            f"{done} of {len(healths)} car(s) Available in {stage} after {_seconds(elapsed)} "
            f"(timeout {_seconds(timeout)})",
        )
        return None

    def staging(self) -> None:
        if self._window_closed():
            return
        took = self._rolled_out(
            Stage.STAGING,
            Phase.STAGING,
            self.settings.timeouts.staging_timeout,
            failed=Phase.ROLLED_BACK,
            reason="StagingFailed",
            consequence="staging is put back to what production runs",
        )
        if took is not None:
            self.enter(
                Phase.VERIFYING,
                "StagingAvailable",
                f"every car is Available in staging after {_seconds(took)}; verifying "
                f"for {_seconds(self.settings.timeouts.verify_for)}",
            )

    def verifying(self) -> None:
        if self._window_closed() or self._staging_broken(
            "BrokeDuringVerification", "during verification"
        ):
            return
        started = since(self.status, Phase.VERIFYING) or self.now
        verify_for = self.settings.timeouts.verify_for
        if self.now - started < verify_for:
            self.wait(
                "Verifying",
                f"staging healthy for {_seconds(self.now - started)} of {_seconds(verify_for)}",
            )
            return
        spec = self.view.spec
        if all(staging_only(c) for c in spec.cars):
            self.enter(
                Phase.DEPLOYED,
                "VerifiedStagingOnly",
                "every car is staging-only: verified in staging, nothing goes to production",
            )
        elif needs_approval(spec):
            self.enter(
                Phase.AWAITING_APPROVAL,
                "Verified",
                f"verified in staging; approve with `kubectl annotate train {self.view.name} "
                "adroit.dev/approved=true`",
            )
        else:
            self.promote_if_window("ContinuousDeployment", "runtime release verified", by=None)

    def quota_shortfall(self) -> str | None:
        """Why production's ResourceQuota cannot take what the promotion adds, if it cannot."""
        quota = self.world.production.quota
        if quota is None:
            return None
        existing = {w.name for w in self.world.production.workloads}
        ns = self.settings.namespaces.production
        needed, parts = 0, []
        for car in self.view.spec.cars:
            release = car_release(car, self.view.name, self.settings)
            if release is None or not goes_to_production(car):
                continue
            plan = render_stage(release, Stage.PRODUCTION, ns, self.settings.traffic)
            for manifest in plan.workloads:
                if manifest["metadata"]["name"] in existing:
                    continue
                container = manifest["spec"]["template"]["spec"]["containers"][0]
                mib = mebibytes(container["resources"]["requests"]["memory"])
                mib *= int(manifest["spec"]["replicas"])
                needed += mib
                role = manifest["metadata"]["labels"]["adroit.dev/role"]
                parts.append(f"{car.flavor} {role} {mib} MiB")
        if needed <= quota.free_mib:
            return None
        return (
            f"production's ResourceQuota has {quota.free_mib} MiB of memory free, but this "
            f"promotion needs {needed} MiB ({', '.join(parts)}): raise the quota in {ns} or "
            "lower the flavors' instances; the train promotes once it fits"
        )

    def promote_if_window(self, reason: str, message: str, by: str | None) -> None:
        shortfall = self.quota_shortfall()
        if shortfall is not None:
            self.wait("InsufficientQuota", f"{message}; {shortfall}")
            return
        if self.may_promote():
            self.enter(Phase.PROMOTING, reason, f"{message}; promoting to production", by=by)
            return
        lead = self.settings.timeouts.promotion_lead_time
        starts = next_promotion_start(self.settings.deploy_window, self.now, lead)
        self.wait(
            "WaitingForPromotionWindow",
            f"{message}; a promotion needs {_seconds(lead)} before the deploy window closes: "
            f"it starts at {_fmt(starts, self.settings)}",
            starts,
        )

    def awaiting_approval(self) -> None:
        if self._window_closed() or self._staging_broken(
            "BrokeWhileAwaitingApproval", "while awaiting approval"
        ):
            return
        mark = self.view.approval
        if mark is None and self.view.approval_problem:
            self.wait("ApprovalNotVerified", self.view.approval_problem)
            return
        if mark is None:
            self.wait(
                "WaitingForApproval",
                f"waiting for a person: `kubectl annotate train {self.view.name} "
                "adroit.dev/approved=true`",
            )
            return
        who = mark.by or "an unverified user"
        self.promote_if_window("Approved", f"approved by {who}", by=mark.by)

    def promoting(self) -> None:
        took = self._rolled_out(
            Stage.PRODUCTION,
            Phase.PROMOTING,
            self.settings.timeouts.promotion_timeout,
            failed=Phase.FAILED,
            reason="ProductionFailed",
            consequence="production keeps what it ran, staging is reverted",
        )
        if took is not None:
            skipped = sum(1 for c in self.view.spec.cars if staging_only(c))
            extra = f"; {skipped} staging-only car(s) skipped" if skipped else ""
            self.enter(
                Phase.DEPLOYED,
                "Promoted",
                f"every car runs in production after {_seconds(took)}{extra}",
            )

    # --- the report ------------------------------------------------------

    def car_statuses(self) -> list[CarStatus]:
        phase = Phase(self.status.phase or Phase.QUEUED)
        staging = self.healths(Stage.STAGING) if phase in (Phase.STAGING, Phase.VERIFYING) else {}
        cars = []
        for car in self.view.spec.cars:
            reason = message = None
            if car.flavor in self.failed:
                reason, message = "Failed", self.failed[car.flavor]
            s = _staging_state(phase, staging.get(car.flavor), car.flavor in self.failed)
            if not goes_to_production(car):
                p, reason, message = (
                    CarState.SKIPPED,
                    reason or "StagingOnly",
                    message or ("staging-only: never applied to production"),
                )
            else:
                p = _production_state(phase, car.flavor in self.failed and phase is Phase.FAILED)
            cars.append(
                CarStatus(
                    flavor=car.flavor, staging=s, production=p, reason=reason, message=message
                )
            )
        return cars

    def conditions(self) -> None:
        phase = Phase(self.status.phase or Phase.QUEUED)
        verified = since(self.status, Phase.VERIFYING) is not None and phase not in (
            Phase.QUEUED,
            Phase.STAGING,
            Phase.VERIFYING,
        )
        approval = self.status.approval
        if approval is not None:
            approved = (True, "Approved", f"approved by {approval.by or 'an unverified user'}")
        elif self.view.approval_problem:
            approved = (False, "ApprovalNotVerified", self.view.approval_problem)
        elif not needs_approval(self.view.spec):
            approved = (False, "NotRequired", "this train needs no approval")
        else:
            approved = (False, "NotYetApproved", "no approval yet")
        message = self.status.message or ""
        conditions = self.status.conditions
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
            status = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
            conditions = set_condition(
                conditions,
                type_,
                status,
                reason,
                text,
                now=self.now,
                generation=self.view.generation,
            )
        self.status = self.status.model_copy(update={"conditions": conditions})

    def record_approval(self) -> None:
        mark = self.view.approval
        current = self.status.approval
        if mark is None:
            if (
                current is not None
                and self.status.phase not in FINISHED
                and self.status.phase != Phase.PROMOTING
            ):
                self.status = self.status.model_copy(update={"approval": None})
            return
        if current is None or current.by != mark.by:
            approval = Approval(by=mark.by, groups=list(mark.groups), at=mark.at or self.now)
            self.status = self.status.model_copy(update={"approval": approval})


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
    machine = _Machine(view, world, settings, on_tracks, ahead)
    machine.record_approval()
    machine.run()
    machine.status = machine.status.model_copy(
        update={
            "cars": machine.car_statuses(),
            "car_count": len(view.spec.cars),
            "observed_generation": view.generation,
        }
    )
    machine.conditions()
    return TrainStep(machine.status, tuple(machine.notices))
