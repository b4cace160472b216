"""An in-memory stand-in for the stages, to drive adroit.plan through whole scenarios.

It does what Kubernetes does to the objects the plan writes: stores them, and
makes a Deployment Available unless its flavor is marked broken. Status
reading goes through the parsers the kube layer uses (plan.observe).
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from adroit.api.flavor import FlavorSpec, FlavorStatus
from adroit.api.settings import Settings, parse_settings
from adroit.api.train import FINISHED, ON_THE_TRACKS, Phase, TrainSpec, TrainStatus
from adroit.plan.cars import snapshot_name
from adroit.plan.formation import REVISION_LABEL, snapshot_spec
from adroit.plan.machine import Notice
from adroit.plan.observe import managed_of, workload_of
from adroit.plan.quantity import mebibytes
from adroit.plan.reconcile import Plan, reconcile
from adroit.plan.render import Stage
from adroit.plan.world import ApprovalMark, FlavorView, Quota, StageWorld, TrainView, World
from tests.kube import flavor

ALWAYS_OPEN = """
deployWindow: {alwaysOpen: true}
timeouts: {stagingTimeout: 2m, verifyFor: 30s, promotionLeadTime: 0s, promotionTimeout: 2m}
runtimes: {scikit-learn-2022-10: repo/sklearn:1}
"""
MONDAY_NOON = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 12:00 in Los Angeles


def settings(text: str = ALWAYS_OPEN) -> Settings:
    return parse_settings(text)


def spec(version: str = "v1", **changes: Any) -> FlavorSpec:
    body = flavor("x", **changes)["spec"]
    body["model"]["version"] = version
    return FlavorSpec.model_validate(body)


class Sim:
    def __init__(self, config: Settings | None = None, now: datetime = MONDAY_NOON) -> None:
        self.settings = config or settings()
        self.quota: Quota | None = None
        self.now = now
        self.flavors: dict[str, FlavorView] = {}
        self.trains: dict[str, TrainView] = {}
        self.objects: dict[Stage, dict[tuple[str, str], dict[str, Any]]] = {
            Stage.STAGING: {},
            Stage.PRODUCTION: {},
        }
        self.broken: set[str] = set()
        self.revisions: dict[str, dict[str, Any]] = {}  # ControllerRevisions, by name
        # Writes the API server refuses, with its message; and the errors the kube
        # layer recorded (a key's error goes once its writes succeed).
        self.refused: dict[tuple[str, Stage], str] = {}
        self.errors: dict[tuple[str, Stage], str] = {}
        self.notices: list[tuple[str, Notice]] = []
        self.history: list[Plan] = []

    # --- what people do ---------------------------------------------------

    def apply_flavor(self, name: str, spec: FlavorSpec, author: str | None = "bob") -> None:
        old = self.flavors.get(name)
        self.flavors[name] = FlavorView(
            name=name,
            spec=spec,
            generation=(old.generation + 1 if old else 1),
            status=old.status if old else FlavorStatus(),
            has_finalizer=bool(old and old.has_finalizer),
            author=author,
        )

    def delete_flavor(self, name: str) -> None:
        self.flavors[name] = replace(self.flavors[name], deleting=True)

    def annotate(self, train: str, **marks: Any) -> None:
        self.trains[train] = replace(self.trains[train], **marks)

    def approve(self, train: str, by: str = "carol") -> None:
        self.annotate(train, approval=ApprovalMark(by=by))

    def create_train(self, name: str, spec: TrainSpec) -> None:
        self.trains[name] = TrainView(
            name=name, created_at=self.now, spec=spec, status=TrainStatus()
        )

    # --- what the cluster does ------------------------------------------

    def stage_world(self, stage: Stage) -> StageWorld:
        ns = (
            self.settings.namespaces.staging
            if stage is Stage.STAGING
            else self.settings.namespaces.production
        )
        workloads, others = [], []
        for (kind, _), manifest in self.objects[stage].items():
            meta = manifest["metadata"]
            if kind == "Deployment":
                flavor_name = meta["labels"]["adroit.dev/flavor"]
                replicas = manifest["spec"]["replicas"]
                up = 0 if flavor_name in self.broken else replicas
                item = {
                    **manifest,
                    "metadata": {**meta, "generation": 1},
                    "status": {
                        "observedGeneration": 1,
                        "updatedReplicas": replicas,
                        "availableReplicas": up,
                        "readyReplicas": up,
                    },
                }
                workloads.append(workload_of(item, []))
            else:
                others.append(managed_of(kind, manifest))
        quota = self.quota if stage is Stage.PRODUCTION else None
        if quota is not None:  # what runs uses the quota, as Kubernetes counts it
            used = sum(
                mebibytes(
                    m["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"][
                        "memory"
                    ]
                )
                * m["spec"]["replicas"]
                for (kind, _), m in self.objects[stage].items()
                if kind == "Deployment"
            )
            quota = Quota(quota.hard_mib, used)
        return StageWorld(ns, tuple(workloads), tuple(others), quota)

    def train_view(self, train: TrainView, errors: dict[tuple[str, Stage], str]) -> TrainView:
        """The train as the kube layer hands it over: car specs filled from their snapshots."""
        if train.status.phase in FINISHED:
            return train
        cars = []
        for car in train.spec.cars:
            if car.spec is None and not car.remove and car.revision:
                name = snapshot_name(car.flavor, car.revision)
                kept = self.revisions.get(name)
                spec = snapshot_spec(car.revision, kept["data"]) if kept else None
                if spec is None:
                    errors[(car.flavor, Stage.STAGING)] = f"snapshot {name} not found"
                car = car.model_copy(update={"spec": spec})
            cars.append(car)
        return replace(train, spec=train.spec.model_copy(update={"cars": cars}))

    def world(self) -> World:
        errors = dict(self.errors)
        trains = tuple(self.train_view(t, errors) for t in self.trains.values())
        return World(
            now=self.now,
            flavors=dict(self.flavors),
            trains=trains,
            staging=self.stage_world(Stage.STAGING),
            production=self.stage_world(Stage.PRODUCTION),
            errors=errors,
            snapshots={
                name: snapshot_spec(kept["metadata"]["labels"][REVISION_LABEL], kept["data"])
                for name, kept in self.revisions.items()
            },
        )

    def step(self) -> Plan:
        world = self.world()
        plan = reconcile(world, self.settings)
        stage_of = {
            self.settings.namespaces.staging: Stage.STAGING,
            self.settings.namespaces.production: Stage.PRODUCTION,
        }
        for key, writes in plan.stages.items():
            if writes and key in self.refused:
                self.errors[key] = self.refused[key]
                continue
            self.errors.pop(key, None)
            for manifest in writes.apply:
                stage = stage_of[manifest["metadata"]["namespace"]]
                self.objects[stage][(manifest["kind"], manifest["metadata"]["name"])] = manifest
            for removal in writes.delete:
                self.objects[stage_of[removal.namespace]].pop((removal.kind, removal.name), None)
        self.errors.update(plan.errors)
        for name, step in plan.trains.items():
            self.trains[name] = replace(self.trains[name], status=step.status)
            self.notices += [(name, n) for n in step.notices]
        for name, status in plan.flavors.items():
            self.flavors[name] = replace(self.flavors[name], status=status)
        for name in plan.add_finalizer:
            self.flavors[name] = replace(self.flavors[name], has_finalizer=True)
        for name in plan.remove_finalizer:
            del self.flavors[name]
        for name in plan.pruning.trains:
            del self.trains[name]
        for name in plan.pruning.revisions:
            del self.revisions[name]
        if plan.formation is not None:
            for revision in plan.formation.revisions:
                self.revisions.setdefault(revision["metadata"]["name"], revision)
        if plan.new_train is not None and plan.new_train["metadata"]["name"] not in self.trains:
            self.create_train(
                plan.new_train["metadata"]["name"], TrainSpec.model_validate(plan.new_train["spec"])
            )
        self.history.append(plan)
        return plan

    def run(self, seconds: float = 0, tick: float = 5) -> None:
        """Reconcile until quiet, then let time pass in ticks, reconciling each."""
        self.settle()
        elapsed = 0.0
        while elapsed < seconds:
            self.now += timedelta(seconds=tick)
            elapsed += tick
            self.settle()

    def settle(self, limit: int = 50) -> None:
        for _ in range(limit):
            plan = self.step()
            if not (
                plan.writes
                or plan.trains
                or plan.new_train
                or plan.flavors
                or plan.add_finalizer
                or plan.remove_finalizer
                or plan.pruning
            ):
                return
        raise AssertionError("the plan never settles: it keeps writing")

    # --- what tests look at ---------------------------------------------

    def phase(self, train: str) -> Phase | None:
        return self.trains[train].status.phase

    def only_train(self) -> str:
        assert len(self.trains) == 1, list(self.trains)
        return next(iter(self.trains))

    def on_tracks(self) -> list[str]:
        return [t.name for t in self.trains.values() if t.status.phase in ON_THE_TRACKS]

    def running(self, stage: Stage, flavor: str) -> str | None:
        """The model version the flavor's stable Service routes to in `stage`."""
        routed = self.stage_world(stage).routed(flavor)
        return routed.release.spec.model.version if routed and routed.release else None
