"""What the operator observed, as plain values: the input of every plan."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from adroit.api.flavor import FlavorSpec, FlavorStatus
from adroit.api.train import TrainSpec, TrainStatus
from adroit.plan.render import Release
from adroit.plan.stages import Stage


@dataclass(frozen=True)
class Workload:
    """A Deployment the operator manages, as observed."""

    name: str
    flavor: str
    role: str
    applied_hash: str
    release: Release | None  # None when its annotations cannot be read back
    replicas: int
    ready_replicas: int
    available: bool
    problem: str | None = None  # why it is not available, when known
    stuck: bool = False  # Kubernetes gave up progressing it (ProgressDeadlineExceeded)


@dataclass(frozen=True)
class Managed:
    """Any other object the operator manages in a stage (Service, PodDisruptionBudget)."""

    kind: str
    name: str
    flavor: str
    applied_hash: str
    target: str | None = None  # for a Service: the Deployment it selects
    body: dict[str, Any] | None = field(default=None, compare=False)  # for a route: as applied


@dataclass(frozen=True)
class Quota:
    """The memory a namespace's ResourceQuotas allow, and what is used of it, in MiB."""

    hard_mib: int
    used_mib: int

    @property
    def free_mib(self) -> int:
        return self.hard_mib - self.used_mib


@dataclass(frozen=True)
class StageWorld:
    namespace: str
    workloads: tuple[Workload, ...] = ()
    others: tuple[Managed, ...] = ()
    quota: Quota | None = None

    def of(self, flavor: str) -> tuple[list[Workload], list[Managed]]:
        return (
            [w for w in self.workloads if w.flavor == flavor],
            [o for o in self.others if o.flavor == flavor],
        )

    def routed(self, flavor: str) -> Workload | None:
        """The Deployment the flavor's stable Service sends its traffic to."""
        workloads, others = self.of(flavor)
        stable = next((o for o in others if o.kind == "Service" and o.name == flavor), None)
        if stable is None:
            return None
        return next((w for w in workloads if w.name == stable.target), None)

    def flavors(self) -> set[str]:
        return {w.flavor for w in self.workloads} | {o.flavor for o in self.others}


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
    spec: TrainSpec
    status: TrainStatus
    generation: int = 1
    approval: ApprovalMark | None = None
    abort_by: str | None = None  # set when the abort annotation is there
    abort: bool = False
    override_window: bool = False
    approval_problem: str | None = None  # why an approval annotation is not honoured
    override_problem: str | None = None
    resource_version: str = ""
    uid: str = ""


@dataclass(frozen=True)
class World:
    now: datetime
    flavors: dict[str, FlavorView] = field(default_factory=dict)
    trains: tuple[TrainView, ...] = ()
    staging: StageWorld = StageWorld("adroit-staging")
    production: StageWorld = StageWorld("adroit-production")

    def stage(self, stage: Stage) -> StageWorld:
        return self.staging if stage is Stage.STAGING else self.production
