"""The train state machine: one pure step from what was observed to the next status.

Every step either moves the train to its next phase or says, in status.reason
and status.message, what it waits for. Time comes from World.now. Which phase
may follow which, and what each phase does, is the table TRANSITIONS at the end.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from adroit.api.settings import Settings
from adroit.api.train import (
    FINISHED,
    Car,
    HistoryEntry,
    Phase,
    TrainSpec,
    TrainStatus,
    repeated_flavors,
)
from adroit.plan.cars import (
    CarError,
    RepeatedFlavor,
    car_health,
    car_release,
    goes_to_production,
    needs_approval,
    staging_only,
)
from adroit.plan.converge import Health
from adroit.plan.quantity import mebibytes
from adroit.plan.render import Release, render_stage
from adroit.plan.runbook import Breach, dropped_cars, runbook_breach
from adroit.plan.stages import Stage, stage_namespace
from adroit.plan.verification import shadow_soak
from adroit.plan.window import can_start_promotion, next_promotion_start, window_state
from adroit.plan.world import CheckResults, TrainView, Verdict, World

# Up to this many cars taken out at once are each a history entry, an Event and a message;
# more (a platform-wide change) are one, and each car's status says why.
NOTED_ONE_BY_ONE = 5
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


class IllegalTransition(AssertionError):
    """A phase handler tried a transition the table does not allow: a bug in the plan."""


def since(status: TrainStatus, phase: Phase) -> datetime | None:
    """When the train last entered `phase`. An entry in the phase the train already was in
    is a note (a car that failed, an approval voided), not an entry into the phase."""
    entered, previous = None, None
    for entry in status.history:
        if entry.phase == phase and previous != phase:
            entered = entry.at
        previous = entry.phase
    return entered


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
            "deadline": None,
            "verifying_until": None,
            "history": [*status.history, entry],
        }
    )


def _wait(
    status: TrainStatus,
    reason: str,
    message: str,
    opens_at: datetime | None = None,
    *,
    deadline: datetime | None = None,
    verifying_until: datetime | None = None,
) -> TrainStatus:
    """The status of a train that stays in its phase: the message says what it waits for,
    and never how long it has waited (times are fields), so it changes only with the state."""
    return status.model_copy(
        update={
            "reason": reason,
            "message": message,
            "window_opens_at": opens_at,
            "deadline": deadline,
            "verifying_until": verifying_until,
        }
    )


def _fmt(moment: datetime | None, settings: Settings) -> str:
    if moment is None:
        return "not within a year"
    return moment.astimezone(settings.deploy_window.zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _seconds(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# The phases in which a train's cars are written to each stage: a write of one of
# its cars that the API server refuses there fails the car (and the train).
_WRITING = {
    Stage.STAGING: frozenset({Phase.STAGING, Phase.VERIFYING, Phase.AWAITING_APPROVAL}),
    Stage.PRODUCTION: frozenset({Phase.PROMOTING}),
}


class Machine:
    """One step of one train: the phase handlers, and the status and notices they leave."""

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
        # Cars a runbook rule took out of the train: they go nowhere, the rest go on.
        self.dropped: dict[str, Breach] = dropped_cars(view.status)
        # The verification check that failed a car, for its status (plan.verification).
        self.check_failures: dict[str, Verdict] = {}
        self._healths: dict[Stage, dict[str, Health]] = {}
        self._releases: dict[str, Release | None] | None = None

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
        current = self.status.phase
        allowed = TRANSITIONS[Phase(current)].to if current else frozenset({Phase.QUEUED})
        if phase not in allowed:
            raise IllegalTransition(f"train {self.view.name}: {current} -> {phase}")
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

    def note(self, reason: str, message: str, *, notify: bool = True) -> None:
        """Record something that happened without a change of phase: in the history, as a
        Warning Event and, when `notify`, to the engineer."""
        phase = Phase(self.status.phase or Phase.QUEUED)
        entry = HistoryEntry(phase=phase, at=self.now, reason=reason, message=message)
        self.status = self.status.model_copy(update={"history": [*self.status.history, entry]})
        text = f"train {self.view.name} ({phase.value}, {reason}): {message}"
        if notify:
            text = f"@{self.view.spec.engineer}: {text}"
        self.notices.append(Notice("Warning", reason, text, notify=notify))

    def cars(self) -> list[Car]:
        """The cars still on the train: every car but those a runbook rule took out."""
        return [c for c in self.view.spec.cars if c.flavor not in self.dropped]

    def check_runbook(self, when: str) -> bool:
        """Take out each car that breaks a runbook rule against what production runs now,
        saying so; True when no car is left (the train then ends Failed)."""
        releases = self.releases()
        found = []
        for car in self.cars():
            breach = runbook_breach(car, releases[car.flavor], self.world.production, self.settings)
            if breach is not None:
                self.dropped[car.flavor] = breach
                found.append(breach)
        outcome = "(its flavor keeps what runs in production) and the rest of the train goes on"
        if len(found) <= NOTED_ONE_BY_ONE:
            for breach in found:
                self.note(
                    breach.reason,
                    f"{breach.message}. Checked {when}: the car is taken out of the train "
                    + outcome,
                )
        else:  # a platform-wide change: one entry, not one per car (history, Events, messages)
            first = found[0]
            self.note(
                first.reason,
                f"{len(found)} cars break runbook rules, checked {when}; each car's status says "
                f"which and why (the first: {first.message}). They are taken out of the train "
                f"{outcome}",
            )
        return self._no_car_left("every car breaks a runbook rule")

    def _no_car_left(self, why: str) -> bool:
        """End the train Failed when runbook rules took out every car; True when they did."""
        if not self.dropped or self.cars():
            return False
        breach = next(iter(self.dropped.values()))
        self.enter(
            Phase.FAILED,
            "RunbookRefused",
            f"{why} ({breach.message}); staging is put back to what production runs",
            warning=True,
        )
        return True

    def wait(
        self,
        reason: str,
        message: str,
        opens_at: datetime | None = None,
        *,
        deadline: datetime | None = None,
        verifying_until: datetime | None = None,
    ) -> None:
        self.status = _wait(
            self.status,
            reason,
            message,
            opens_at,
            deadline=deadline,
            verifying_until=verifying_until,
        )

    def releases(self) -> dict[str, Release | None]:
        """What each car runs (a car that cannot run raises CarError), worked out once per
        step, and again only for a car or settings that are not those of the last step."""
        if self._releases is None:
            remembered, train = self.world.remembered, self.view.name
            releases: dict[str, Release | None] = {}
            for car in self.view.spec.cars:
                if car.flavor in releases:  # admitted while the webhook was off
                    why = repeated_flavors(c.flavor for c in self.view.spec.cars)
                    raise RepeatedFlavor(f"{why}, and create a new Train")
                key, inputs = (train, car.flavor, "release"), (car, self.settings)
                release = remembered.get(key, inputs)
                if not isinstance(release, Release):  # a removal (None) is quick to work out
                    release = car_release(car, train, self.settings)
                    remembered.put(key, inputs, release)
                releases[car.flavor] = release
            self._releases = releases
        return self._releases

    def healths(self, stage: Stage) -> dict[str, Health]:
        """Each car's health in `stage` (computed once per step: the world does not change),
        reused from an earlier step while the car's release and the flavor's objects in
        `stage` are the same objects."""
        if stage not in self._healths:
            cars = self.cars()
            if stage is Stage.PRODUCTION:
                cars = [c for c in cars if goes_to_production(c)]
            releases = self.releases()
            remembered, train, place = (
                self.world.remembered,
                self.view.name,
                self.world.stage(stage),
            )
            healths: dict[str, Health] = {}
            for c in cars:
                workloads, others = place.of(c.flavor)
                key = (train, c.flavor, stage.value)
                inputs = (releases[c.flavor], self.settings, *workloads, *others)
                health = remembered.get(key, inputs)
                if not isinstance(health, Health):
                    health = car_health(
                        releases[c.flavor], c.flavor, stage, self.world, self.settings
                    )
                    remembered.put(key, inputs, health)
                healths[c.flavor] = health
            self._healths[stage] = healths
        return self._healths[stage]

    def refused(self, stage: Stage) -> dict[str, str]:
        """The cars whose writes to `stage` the API server refused, with its message."""
        if self.status.phase not in _WRITING[stage]:
            return {}
        cars = self.cars()
        if stage is Stage.PRODUCTION:
            cars = [c for c in cars if goes_to_production(c)]
        errors = self.world.errors
        return {c.flavor: errors[(c.flavor, stage)] for c in cars if (c.flavor, stage) in errors}

    def _write_refused(self) -> bool:
        """End the train when a write of one of its cars was refused, naming car and message."""
        for stage, ends, consequence in (
            (Stage.STAGING, Phase.ROLLED_BACK, "staging is put back to what production runs"),
            (
                Stage.PRODUCTION,
                Phase.FAILED,
                "production keeps what it ran, staging is reverted",
            ),
        ):
            refused = self.refused(stage)
            if not refused:
                continue
            for flavor, message in refused.items():
                self.failed[flavor] = f"the API server refused its {stage} write: {message}"
            flavor, message = next(iter(refused.items()))
            self.enter(
                ends,
                "WriteRefused",
                f"car {flavor} in {stage}: the API server refused it: {message}; {consequence}",
                warning=True,
            )
            return True
        return False

    def window_open(self) -> bool:
        return self.view.override_window or window_state(self.settings.deploy_window, self.now).open

    def may_promote(self) -> bool:
        lead = self.settings.timeouts.promotion_lead_time
        return self.view.override_window or can_start_promotion(
            self.settings.deploy_window, self.now, lead
        )

    # --- phases ----------------------------------------------------------

    def run(self) -> None:
        formed = self.status.phase is None
        if formed:
            self.enter(Phase.QUEUED, "Created", f"queued with {len(self.view.spec.cars)} car(s)")
            if self.view.ignored_fields:
                self.note(
                    "UntrustedFieldsIgnored",
                    "the operator did not form this train, so it does not honour the fields "
                    f"only it may set: {', '.join(self.view.ignored_fields)}. Revisions come "
                    "from the carried specs, images from the settings' runtime catalog, authors "
                    "from the Flavors, and the train needs approval",
                )
        phase = Phase(self.status.phase or Phase.QUEUED)
        if phase in FINISHED:
            return
        if self.view.abort:
            who = (
                f" by {self.view.abort_by}"
                if self.view.abort_by
                else " by an unverified requester (the abort carries no signed record of who "
                "asked; stopping is always allowed)"
            )
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
        if self._write_refused():
            return
        try:
            self.releases()
        except CarError as error:
            self.enter(Phase.FAILED, error.reason, str(error), warning=True)
            return
        if formed and self.check_runbook("when the train formed"):
            return
        TRANSITIONS[phase].handler(self)

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
        self.void_approval("the deploy window closed before promotion (WindowClosed)")
        return True

    def void_approval(self, why: str) -> None:
        """An approval covers the staging it was given on, once: going back to Queued voids
        it (the signed record names the departure it was given in, see plan.approvals)."""
        mark = self.view.approval
        if mark is None:
            return
        who = mark.by or "an unverified user"
        self.status = self.status.model_copy(update={"approval": None})
        self.note(
            "ApprovalVoided",
            f"the approval by {who} is void: {why}, and staging is redone when the train "
            "departs again; a new approval is needed once it is AwaitingApproval again",
        )

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
        deadline = (since(self.status, entered) or self.now) + timeout
        self.wait(
            f"WaitingFor{stage.value.capitalize()}",
            f"waiting for every car to be Available in {stage} (status.cars says which are); "
            f"the train times out at {_clock(deadline)}",
            deadline=deadline,
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
        until = started + self.settings.timeouts.verify_for
        checked = self.verification_results(until)
        if self._check_failed(checked):
            return
        if self.now < until:
            extra = " and pass its verification checks" if checked else ""
            self.wait(
                "Verifying",
                f"staging must stay healthy for {_seconds(self.settings.timeouts.verify_for)}"
                f"{extra}, until {_clock(until)}",
                verifying_until=until,
            )
            return
        pending = [f for f, results in checked.items() if results is None or not results.finished]
        if pending:
            self.wait(
                "WaitingForChecks",
                f"the verification time is up; waiting for the checks of {', '.join(pending)}",
                verifying_until=until,
            )
            return
        self._verified(checked)

    def _verified(self, checked: Mapping[str, CheckResults | None]) -> None:
        spec = self.view.spec
        self._verified_next(spec)
        if self.status.phase == Phase.VERIFYING:
            return  # still waiting (for the promotion window, for quota)
        for results in checked.values():
            for verdict in results.verdicts if results else ():
                if verdict.passed and verdict.reason:  # passed, with a remark
                    self.note(verdict.reason, verdict.message, notify=False)

    def _verified_next(self, spec: TrainSpec) -> None:
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

    def verification_results(self, until: datetime) -> dict[str, CheckResults | None]:
        """This round's check results of each car that has checks (None: none yet)."""
        found: dict[str, CheckResults | None] = {}
        for car in self.cars():
            if car.spec is not None and car.spec.verification is not None:
                results = self.world.checks.get((self.view.name, car.flavor))
                found[car.flavor] = results if results and results.until == until else None
        return found

    def _check_failed(self, checked: Mapping[str, CheckResults | None]) -> bool:
        """Roll the train back when a verification check of one of its cars failed."""
        failed: dict[str, Verdict] = {}
        for flavor, results in checked.items():
            for verdict in results.verdicts if results else ():
                if not verdict.passed:
                    failed.setdefault(flavor, verdict)
        if not failed:
            return False
        for flavor, verdict in failed.items():
            self.failed[flavor] = verdict.message
            self.check_failures[flavor] = verdict
        flavor, verdict = next(iter(failed.items()))
        self.enter(
            Phase.ROLLED_BACK,
            verdict.reason,
            f"{verdict.message}; staging is put back to what production runs",
            warning=True,
        )
        return True

    def shadows_not_compared(self, message: str) -> bool:
        """Before a shadow gets live traffic, its metrics under mirroring are compared with the
        primary's over the soak time: True while that waits, or when it took out every car. A
        shadow that compares badly takes its car out of the train, as a runbook rule does."""
        waiting = []
        for car in self.cars():
            soak = shadow_soak(self.view, car, self.world, self.settings)
            if soak is None:
                continue
            results = self.world.checks.get(soak.key)
            if self.now < soak.ready_at:
                waiting.append(f"{car.flavor}'s shadow is compared at {_clock(soak.ready_at)}")
            elif results is None or results.until != soak.ready_at or not results.finished:
                waiting.append(f"comparing {car.flavor}'s shadow with its primary")
            else:
                for verdict in results.verdicts:
                    if not verdict.passed:
                        self.dropped[car.flavor] = Breach(verdict.reason, verdict.message)
                        self.note(
                            verdict.reason,
                            f"{verdict.message}. The car is taken out of the train (production "
                            "keeps mirroring to the shadow) and the rest of the train goes on",
                        )
        if self._no_car_left("every car was taken out"):
            return True
        if waiting:
            self.wait("ShadowSoaking", f"{message}; {'; '.join(waiting)}")
            return True
        return False

    def quota_shortfall(self) -> str | None:
        """Why production's ResourceQuota cannot take what the promotion adds, if it cannot."""
        quota = self.world.production.quota
        if quota is None:
            return None
        existing = {w.name for w in self.world.production.workloads}
        ns = stage_namespace(Stage.PRODUCTION, self.settings.namespaces)
        needed, parts = 0, []
        for car in self.cars():
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
        if self.check_runbook("before promotion") or self.shadows_not_compared(message):
            return
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
            self.wait(self.view.approval_problem_reason, self.view.approval_problem)
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
            skipped = sum(1 for c in self.cars() if staging_only(c))
            extra = f"; {skipped} staging-only car(s) skipped" if skipped else ""
            self.enter(
                Phase.DEPLOYED,
                "Promoted",
                f"every car runs in production after {_seconds(took)}{extra}",
            )


@dataclass(frozen=True)
class PhaseRule:
    """What a phase does on each step, and the phases it may move to."""

    handler: Callable[[Machine], None]
    to: frozenset[Phase]


def _finished(_: Machine) -> None:
    """A finished train stays as it is."""


_ENDS = frozenset({Phase.ABORTED, Phase.FAILED})  # abort, and a car the settings cannot run
_BACK = frozenset({Phase.ROLLED_BACK, Phase.QUEUED})  # broken staging, window closed

TRANSITIONS: Mapping[Phase, PhaseRule] = {
    Phase.QUEUED: PhaseRule(Machine.queued, frozenset({Phase.STAGING}) | _ENDS),
    Phase.STAGING: PhaseRule(Machine.staging, frozenset({Phase.VERIFYING}) | _BACK | _ENDS),
    Phase.VERIFYING: PhaseRule(
        Machine.verifying,
        frozenset({Phase.AWAITING_APPROVAL, Phase.PROMOTING, Phase.DEPLOYED}) | _BACK | _ENDS,
    ),
    Phase.AWAITING_APPROVAL: PhaseRule(
        Machine.awaiting_approval, frozenset({Phase.PROMOTING}) | _BACK | _ENDS
    ),
    Phase.PROMOTING: PhaseRule(Machine.promoting, frozenset({Phase.DEPLOYED}) | _ENDS),
    **{phase: PhaseRule(_finished, frozenset()) for phase in FINISHED},
}
