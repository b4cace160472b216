"""The reconciler's engine: watch-fed caches, a queue of keys, and per-key fault isolation.

Every kind the operator reads is watched once (adroit.kube.informer); a change
enqueues only the keys it touches: a flavor (its stages and its status), or
`trains` (stepping the trains, forming the next one, pruning old ones), the one
key that needs a view of all trains. Keys are worked off in batches over one
snapshot of the caches. A write the API server refuses (4xx) belongs to its
flavor and stage: it is recorded for the train to fail that car with the API
server's message, and every other key goes on. Busy, broken or unreachable
servers (5xx, 429, timeouts) are retried per key with backoff.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api import names
from adroit.api.settings import Settings
from adroit.api.train import FINISHED, Phase, TrainSpec
from adroit.kube import act, rest
from adroit.kube.informer import Informer
from adroit.kube.metrics import (
    FLAVORS,
    NOTIFICATION_FAILURES,
    RECONCILE_TIME,
    RECONCILE_TOTAL,
    TRAIN_PHASE,
    TRAIN_TRANSITIONS,
    WORKQUEUE_DEPTH,
)
from adroit.kube.notify import notify
from adroit.kube.read import ReadCars, flavor_or_unreadable, quota_of, train_status, train_view
from adroit.kube.verifier import Due, Verifier
from adroit.plan.cars import snapshot_name
from adroit.plan.contest import Contests
from adroit.plan.contest import Key as ContestKey
from adroit.plan.converge import Writes
from adroit.plan.drift import added_by_others, differs
from adroit.plan.flavors import awaits_formation, flavor_status, unreadable_status
from adroit.plan.formation import REVISION_LABEL, Formation, form_train, prune, snapshot_spec
from adroit.plan.machine import Notice
from adroit.plan.observe import managed_of, unschedulable, workload_of
from adroit.plan.reconcile import FinalizerAction, finalizer_action, stage_writes
from adroit.plan.render import APPLIED, DEPLOYMENT_LABEL
from adroit.plan.stages import Stage
from adroit.plan.trains import TrainStep, step_trains
from adroit.plan.trust import SIGNATURE, signed_by_operator, train_signature, without_owned_fields
from adroit.plan.world import (
    FlavorView,
    Managed,
    Remembered,
    StageWorld,
    TrainView,
    UnreadableFlavor,
    Workload,
    World,
)

log = logging.getLogger("adroit.reconciler")
T = TypeVar("T")
MANAGED = f"{names.MANAGED_BY}={names.MANAGED_BY_VALUE}"
TRAINS = "\0trains"  # the key of everything that needs all trains (no flavor has this name)
MAX_BACKOFF = 10.0  # a key should not wait long after the API server is back
FORMATION_SETTLE = 0.25  # s without a Flavor change before a train forms: a batch rides together
# Between two passes over the trains, at least twice as long as the last one took: a
# one-car train moves at once, a 2,000-car train does not spend the CPU the API server needs.
# Forming a train does not count: a train departs as soon as it is formed.
TRAINS_PACE = 2.0
WRITERS = 16  # writes in flight at once


async def at_most(limit: int, items: Iterable[T], work: Callable[[T], Awaitable[None]]) -> None:
    """`work` for each item, `limit` at a time, in order, by `limit` tasks that take the
    items in turn: not a task for each item, whose making (2,000 flavors: 10 ms) is one step
    that holds the event loop. The first error is raised; the other tasks go on."""
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await work(item)

    await asyncio.gather(*(worker() for _ in range(limit)))


@dataclass(frozen=True)
class FlavorWork:
    """What one flavor needs, computed off the event loop: per stage the writes (or why they
    cannot be computed), its finalizer, and its status before and after (None: unchanged)."""

    writes: dict[Stage, Writes | str]
    view: FlavorView | None = None
    finalizer: FinalizerAction | None = None
    status: tuple[dict[str, Any], dict[str, Any]] | None = None
    version: str = ""  # the resourceVersion the status was computed from, without a view
    repairs: dict[Stage, list[ContestKey]] = field(default_factory=dict)  # objects put back


@dataclass(frozen=True)
class Caches:
    """What the watches hold at one moment, copied on the event loop (a fraction of a
    millisecond with 2,000 flavors) so that the world is built from it off the loop."""

    flavors: dict[str, Any]
    trains: tuple[TrainView, ...]
    revisions: dict[str, Any]
    # Per stage: the changes seen, and what each kind holds (None: the view kept is current).
    stages: dict[Stage, tuple[int, dict[str, dict[str, Any]] | None]]
    snapshot_changes: int
    errors: dict[tuple[str, Stage], str]
    checks: dict[tuple[str, str], Any]


class Resolved(NamedTuple):
    """A train as the cache holds it, and with its cars' specs read from their snapshots."""

    view: TrainView
    snapshots: int  # the snapshot changes seen when it was resolved
    resolved: TrainView


def _pod_of(item: dict[str, Any]) -> dict[str, Any]:
    """A pod, reduced to what explains a Deployment that is not available: its
    Deployment, and the conditions that are not met."""
    meta = item["metadata"]
    owner = (meta.get("labels") or {}).get(DEPLOYMENT_LABEL)
    unmet = [
        {k: c[k] for k in ("type", "status", "reason", "message") if k in c}
        for c in (item.get("status") or {}).get("conditions") or []
        if c.get("status") != "True"
    ]
    return {
        "metadata": {"name": meta["name"], "labels": {DEPLOYMENT_LABEL: owner} if owner else {}},
        "status": {"conditions": unmet},
    }


def _workload(item: dict[str, Any]) -> Workload:
    return workload_of(item)


def _managed(kind: str) -> Callable[[dict[str, Any]], Managed]:
    return lambda item: managed_of(kind, item)


def _snapshot(item: dict[str, Any]) -> Any:
    """A car's spec snapshot, checked against its revision hash (None: it does not match)."""
    revision = (item["metadata"].get("labels") or {}).get(REVISION_LABEL, "")
    return snapshot_spec(revision, item.get("data"))


class Controller:
    def __init__(
        self,
        api: client.ApiClient,
        settings: Settings,
        key: bytes | None,
        *,
        stamps: bool = True,
    ) -> None:
        """`key` signs the trains the operator forms and checks the records of approvals;
        `stamps`: the admission webhook writes those records (off: annotations alone count)."""
        self.api, self.settings, self.key, self.stamps = api, settings, key, stamps
        ns = settings.namespaces
        self.errors: dict[tuple[str, Stage], str] = {}
        self.contests = Contests()  # objects something else keeps changing
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.dirty: set[str] = set()
        self.wakeup = asyncio.Event()
        self.retry_at: dict[str, float] = {}
        self.backoff: dict[str, float] = {}
        self.last_flavor_change = 0.0
        self.trains_not_before = 0.0  # monotonic time of the next pass over the trains
        self.forming = 0.0  # s the last pass over the trains spent forming one
        # A train not finished: time alone moves it (windows, timeouts, verifyFor), so the
        # trains are looked at every pollInterval. Otherwise only a change does.
        self.in_motion = True
        # Changes that may form a train or end one, and how many of them formation has seen.
        self.changes_seen = 1
        self.changes_formed = 0
        # Flavors whose status waits for the next formation (see _waits_for_formation), with
        # how many formations had been tried when it began to wait.
        self.formations = 0
        self.waiting_status: dict[str, int] = {}
        # (train uid, generation, signature) -> the spec honoured, and the fields ignored
        self._specs: dict[tuple[str, int, str | None], tuple[TrainSpec, tuple[str, ...]]] = {}
        self._notifications: set[asyncio.Task[None]] = set()
        self.notifications_failed = 0  # messages the notification webhook never took
        self._exported: set[str] = set()  # trains whose phase is a metric
        # Verification checks run as tasks of their own; their results are observations.
        self.verifier = Verifier(api, settings, lambda: self.enqueue(TRAINS))
        # A stage's view is built again only after something in it changed.
        self._stage_changes: dict[Stage, int] = dict.fromkeys(Stage, 0)
        self._stage_views: dict[Stage, tuple[int, StageWorld]] = {}
        self._snapshot_changes = 0
        # train name -> its view with its cars' specs: a new status reuses the cars (2,000
        # copies take 10 ms)
        self._resolved: dict[str, Resolved] = {}
        # train uid -> its cars as last read, while it moves: a new status reads only the cars
        # that changed
        self._read_cars: dict[str, ReadCars] = {}
        self._remembered = Remembered()  # what the trains' steps worked out for their cars

        def on(kind: str, namespace: str, **kw: Any) -> Informer:
            return Informer(api, kind, namespace, **kw)

        self.flavors = on(
            "Flavor", ns.control, transform=flavor_or_unreadable, on_change=self._flavor_changed
        )
        self.trains = on("Train", ns.control, transform=self._train, on_change=self._train_changed)
        self.revisions = on(
            "ControllerRevision",
            ns.control,
            labels=MANAGED,
            transform=_snapshot,
            on_change=self._snapshot_changed,
        )
        self.stages: dict[Stage, dict[str, Informer]] = {}
        for stage, namespace in ((Stage.STAGING, ns.staging), (Stage.PRODUCTION, ns.production)):
            kinds = ["Deployment", "Service", "PodDisruptionBudget"]
            if stage is Stage.PRODUCTION:
                kinds += ["HTTPRoute", "VirtualService"]
            watched = {
                kind: on(
                    kind,
                    namespace,
                    labels=MANAGED,
                    transform=_workload if kind == "Deployment" else _managed(kind),
                    on_change=self._owned_changed(stage),
                )
                for kind in kinds
            }
            watched["Pod"] = on(
                "Pod",
                namespace,
                labels=MANAGED,
                transform=_pod_of,
                on_change=self._stage_changed(stage),
            )
            if stage is Stage.PRODUCTION:
                watched["ResourceQuota"] = on(
                    "ResourceQuota", namespace, on_change=self._stage_changed(stage)
                )
            self.stages[stage] = watched

    # --- the caches ------------------------------------------------------

    @property
    def informers(self) -> list[Informer]:
        every = [self.flavors, self.trains, self.revisions]
        for watched in self.stages.values():
            every += watched.values()
        return every

    def _train(self, item: dict[str, Any]) -> TrainView:
        meta = item["metadata"]
        signature = (meta.get("annotations") or {}).get(SIGNATURE)
        cache_key = (meta["uid"], int(meta.get("generation", 1)), signature)
        honoured = self._specs.get(cache_key)
        if honoured is None:
            spec = TrainSpec.model_validate(item["spec"])
            if self.key is not None and signed_by_operator(meta["name"], spec, signature, self.key):
                honoured = (spec, ())
            else:
                untrusted = without_owned_fields(spec)
                honoured = (untrusted.spec, untrusted.ignored)
            self._specs[cache_key] = honoured
        uid = meta["uid"]
        status, cars = train_status(item.get("status") or {}, self._read_cars.get(uid))
        view = train_view(item, self.key if self.stamps else None, honoured[0], status)
        if status.phase in FINISHED:  # its cars change no more
            self._read_cars.pop(uid, None)
        else:
            self._read_cars[uid] = cars
        return replace(view, ignored_fields=honoured[1]) if honoured[1] else view

    def _snapshot_changed(self, old: Any, new: Any) -> None:
        self._snapshot_changes += 1
        self.enqueue(TRAINS)

    def enqueue(self, key: str) -> None:
        """Something changed that concerns `key`."""
        if key == TRAINS:
            self.changes_seen += 1
        self.dirty.add(key)
        self.wakeup.set()

    def _flavor_changed(self, old: Any, new: Any) -> None:
        view = new or old
        if (
            old is None
            or new is None
            or old.generation != new.generation
            or (old.deleting != new.deleting)
        ):
            self.last_flavor_change = time.monotonic()
        self.enqueue(view.name)
        self.enqueue(TRAINS)

    def _train_changed(self, old: TrainView | None, new: TrainView | None) -> None:
        self.enqueue(TRAINS)
        view = new or old
        assert view is not None
        if new is None:  # what was kept for the train goes with it (pruned trains add up)
            for key in [k for k in self._specs if k[0] == view.uid]:
                del self._specs[key]
            self._read_cars.pop(view.uid, None)
        if old is None or new is None or old.status.phase != new.status.phase:
            # Its phase decides what its cars' flavors should run in each stage.
            for car in view.spec.cars:
                self.enqueue(car.flavor)

    def _stage_changed(self, stage: Stage) -> Callable[[Any, Any], None]:
        def changed(old: Any, new: Any) -> None:
            self._stage_changes[stage] += 1
            self.enqueue(TRAINS)

        return changed

    def _owned_changed(self, stage: Stage) -> Callable[[Any, Any], None]:
        def changed(old: Workload | Managed | None, new: Workload | Managed | None) -> None:
            self._stage_changes[stage] += 1
            for item in (old, new):
                if item is not None and item.flavor:
                    self.enqueue(item.flavor)
            self.enqueue(TRAINS)

        return changed

    def caches(self) -> Caches:
        """What the watches hold now; a stage whose view is current is not copied."""
        stages: dict[Stage, tuple[int, dict[str, dict[str, Any]] | None]] = {}
        for stage, watched in self.stages.items():
            changes, kept = self._stage_changes[stage], self._stage_views.get(stage)
            current = kept is not None and kept[0] == changes
            stages[stage] = (
                changes,
                None if current else {k: dict(i.items) for k, i in watched.items()},
            )
        return Caches(
            flavors=dict(self.flavors.items),
            trains=tuple(self.trains.items.values()),
            revisions=dict(self.revisions.items),
            stages=stages,
            snapshot_changes=self._snapshot_changes,
            errors=dict(self.errors),
            checks=dict(self.verifier.results),
        )

    def world(self, caches: Caches) -> World:
        """One snapshot of every cache, for one batch of keys, with its indexes built:
        computation alone (tens of milliseconds with 2,000 flavors), run off the event loop."""
        flavors = caches.flavors
        trains = tuple(self._resolved_view(t, caches) for t in caches.trains)
        for name in self._resolved.keys() - {t.name for t in trains}:
            del self._resolved[name]  # what was kept for a train goes with it
        self._remembered.keep_only({t.name for t in trains if t.status.phase not in FINISHED})
        return World(
            now=datetime.now(UTC),
            flavors={n: v for n, v in flavors.items() if isinstance(v, FlavorView)},
            trains=trains,
            staging=self._stage_world(Stage.STAGING, caches),
            production=self._stage_world(Stage.PRODUCTION, caches),
            errors=caches.errors,
            snapshots=caches.revisions,
            unreadable={n: v for n, v in flavors.items() if isinstance(v, UnreadableFlavor)},
            checks=caches.checks,
            remembered=self._remembered,
        ).indexed()

    def _stage_world(self, stage: Stage, caches: Caches) -> StageWorld:
        changes, items = caches.stages[stage]
        if items is None:
            return self._stage_views[stage][1]
        view = self._build_stage_world(stage, items)
        self._stage_views[stage] = (changes, view)
        return view

    def _build_stage_world(self, stage: Stage, items: dict[str, dict[str, Any]]) -> StageWorld:
        namespace = self.stages[stage]["Deployment"].namespace
        pods: dict[str, list[dict[str, Any]]] = {}
        for pod in items["Pod"].values():
            owner = pod["metadata"]["labels"].get(DEPLOYMENT_LABEL)
            if owner:
                pods.setdefault(owner, []).append(pod)
        workloads = []
        for name, workload in items["Deployment"].items():
            if not workload.available and name in pods:
                why = unschedulable(pods[name], name)
                workload = replace(workload, problem=why) if why else workload
            workloads.append(workload)
        others = [
            item
            for kind in ("Service", "PodDisruptionBudget", "HTTPRoute", "VirtualService")
            if kind in items
            for item in items[kind].values()
        ]
        quota = None
        if "ResourceQuota" in items:
            quota = quota_of(list(items["ResourceQuota"].values()))
        return StageWorld(namespace, tuple(workloads), tuple(others), quota)

    def _resolved_view(self, view: TrainView, caches: Caches) -> TrainView:
        """The train with each car's spec read from its ControllerRevision snapshot; a car whose
        snapshot is missing keeps none, and the plan fails it (SnapshotMissing)."""
        if view.status.phase in FINISHED or all(c.spec or c.remove for c in view.spec.cars):
            return view
        kept = self._resolved.get(view.name)
        if kept is not None and kept.snapshots == caches.snapshot_changes:
            if kept.view is view:
                return kept.resolved
            if kept.view.spec is view.spec:  # only its status or marks changed
                resolved = replace(view, spec=kept.resolved.spec)
                self._resolved[view.name] = Resolved(view, caches.snapshot_changes, resolved)
                return resolved
        cars = [
            car
            if car.spec is not None or car.remove
            else car.model_copy(
                update={"spec": caches.revisions.get(snapshot_name(car.flavor, car.revision or ""))}
            )
            for car in view.spec.cars
        ]
        resolved = replace(view, spec=view.spec.model_copy(update={"cars": cars}))
        self._resolved[view.name] = Resolved(view, caches.snapshot_changes, resolved)
        return resolved

    # --- the loop --------------------------------------------------------

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run(), name=repr(i)) for i in self.informers]
        try:
            await asyncio.gather(*(i.synced.wait() for i in self.informers))
            log.info(
                "caches synced: %d flavors, %d trains",
                len(self.flavors.items),
                len(self.trains.items),
            )
            self.enqueue(TRAINS)
            for name in self.flavors.items:
                self.enqueue(name)
            await self._work()
        finally:
            for task in tasks:
                task.cancel()
            for timer in self._timers.values():
                timer.cancel()
            await asyncio.gather(*tasks, *self._notifications, return_exceptions=True)
            await self.verifier.close()

    async def _work(self) -> None:
        poll = self.settings.timeouts.poll_interval.total_seconds()
        while True:
            try:
                # Not asyncio.wait_for: on Python 3.11 it drops a cancellation that comes as
                # the event is set, and the reconciler would go on after it was told to stop
                # (at exit, or when its Lease is lost).
                async with asyncio.timeout(self._next_wait(poll)):
                    await self.wakeup.wait()
            except TimeoutError:
                if self.in_motion:
                    self.dirty.add(TRAINS)  # time passes: windows open, timeouts run out
            self.wakeup.clear()
            now = time.monotonic()
            due = {k for k in self.dirty if self.retry_at.get(k, 0.0) <= now}
            if TRAINS in due and now < self.trains_not_before:
                due.discard(TRAINS)
            WORKQUEUE_DEPTH.labels("adroit").set(len(self.dirty))
            if not due:
                continue
            self.dirty -= due
            try:
                world = await asyncio.to_thread(self.world, self.caches())
            except Exception:  # a bug in reading the caches: say so, and look again soon
                log.exception("cannot build the world from the caches")
                self.dirty |= due
                await asyncio.sleep(1.0)
                continue
            await self._batch(due, world)

    async def _batch(self, due: set[str], world: World) -> None:
        if TRAINS in due:
            started = time.monotonic()
            self.forming = 0.0
            await self._guarded(TRAINS, lambda: self._trains(world))
            took = time.monotonic() - started - self.forming
            self.trains_not_before = max(self.trains_not_before, started + TRAINS_PACE * took)
        keys = sorted(due - {TRAINS})
        if not keys:
            return

        # Each flavor is planned on the event loop just before its writes: about a
        # millisecond each, with the loop free in between. (In a worker thread the planning
        # would hold the GIL against the loop's every socket call, and slow the writes.)
        async def one(flavor: str) -> None:
            async def planned_and_written() -> None:  # a failure to plan is this key's alone
                await self._flavor(flavor, self._plan_flavor(flavor, world))

            await self._guarded(flavor, planned_and_written)

        await at_most(WRITERS, keys, one)

    def _plan_flavor(self, name: str, world: World) -> "FlavorWork":
        """What one flavor needs: computation, no I/O (repairs of a contested object held)."""
        writes: dict[Stage, Writes | str] = {}
        for stage in Stage:
            try:
                writes[stage] = stage_writes(name, stage, world, self.settings)
            except Exception as error:  # a spec that cannot be rendered fails its car
                log.exception("flavor %s cannot be rendered for %s", name, stage)
                writes[stage] = f"cannot render {stage}: {error}"
        repairs, contested = self._held_if_contested(name, writes)
        view = world.flavors.get(name)
        unreadable = world.unreadable.get(name)
        if unreadable is not None:
            status = unreadable_status(unreadable, world.now)
            changed = status != unreadable.status
            before = (unreadable.status.to_wire(), status.to_wire()) if changed else None
            return FlavorWork(
                writes, status=before, version=unreadable.resource_version, repairs=repairs
            )
        if view is None:
            self.waiting_status.pop(name, None)  # deleted while its status waited
            return FlavorWork(writes, repairs=repairs)
        try:
            status = flavor_status(view, world, contested)
        except Exception:  # a bug: the writes (drift repairs) still go; the status waits
            log.exception("the status of flavor %s cannot be worked out", name)
            return FlavorWork(writes, view, finalizer_action(view, world), repairs=repairs)
        changed = status != view.status and not self._waits_for_formation(name, status, world)
        return FlavorWork(
            writes,
            view,
            finalizer_action(view, world),
            (view.status.to_wire(), status.to_wire()) if changed else None,
            repairs=repairs,
        )

    def _held_if_contested(
        self, name: str, writes: dict[Stage, Writes | str]
    ) -> tuple[dict[Stage, list[ContestKey]], dict[Stage, str]]:
        """Hold the repairs of an object that something else keeps changing (plan.contest):
        per stage, the objects the writes put back, and why the stage is contested."""
        now = time.monotonic()
        repairs: dict[Stage, list[ContestKey]] = {}
        why: dict[Stage, str] = {}
        again: list[float] = []  # when to plan it again: a held repair, a contest that ends
        for stage, staged in list(writes.items()):
            if isinstance(staged, Writes) and staged.apply:
                going, keys = [], []
                for manifest in staged.apply:
                    key = self._repair(name, stage, manifest)
                    wait = self.contests.wait(key, now) if key else None
                    if wait is not None:  # it waits; the rest of the stage's writes go
                        again.append(wait)
                        continue
                    going.append(manifest)
                    if key:
                        keys.append(key)
                if len(going) < len(staged.apply):
                    writes[stage] = Writes(apply=tuple(going), delete=staged.delete)
                if keys:
                    repairs[stage] = keys
            contested = self.contests.contested(name, stage, now)
            if contested is not None:
                why[stage], left = contested
                again.append(left)
        if again:
            self._look_again(name, min(again))
        return repairs, why

    def _repair(self, flavor: str, stage: Stage, manifest: dict[str, Any]) -> ContestKey | None:
        """The object, if this write puts back what the operator applied already."""
        kind, meta = manifest["kind"], manifest["metadata"]
        informer = self.stages[stage].get(kind)
        seen = informer.items.get(meta["name"]) if informer is not None else None
        if seen is None or seen.applied_hash != meta["annotations"].get(APPLIED):
            return None
        return (flavor, stage, kind, meta["name"])

    def _look_again(self, key: str, after: float) -> None:
        """Plan `key` again `after` seconds from now (once, whatever happens meanwhile)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

        def due() -> None:
            self._timers.pop(key, None)
            self.enqueue(key)

        self._timers[key] = asyncio.get_running_loop().call_later(after, due)

    def _waits_for_formation(self, name: str, status: Any, world: World) -> bool:
        """A status that says AwaitingTrain while a train is about to form for the change
        would be written again a moment later, as OnTrain: for a platform-wide change, a
        write per flavor for nothing. It waits for the next formation, once (the formation
        enqueues it again), and is written then."""
        if not awaits_formation(status, world):
            self.waiting_status.pop(name, None)
            return False
        since = self.waiting_status.setdefault(name, self.formations)
        if since == self.formations:
            return True
        del self.waiting_status[name]
        return False

    def _next_wait(self, poll: float) -> float | None:
        now = time.monotonic()
        waits = [poll] if self.in_motion else []
        waits += [t - now for k, t in self.retry_at.items() if k in self.dirty]
        if TRAINS in self.dirty:
            waits.append(self.trains_not_before - now)
        return max(0.01, min(waits)) if waits else None  # None: until a change

    async def _guarded(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run one key; a passing failure retries it with its own backoff, and no failure
        of one key ever stops the others."""
        controller = "train" if key == TRAINS else "flavor"
        started = time.monotonic()
        try:
            await work()
        except rest.FAILURES as error:
            delay = self._back_off(key)
            what = "the trains" if key == TRAINS else f"flavor {key}"
            log.warning("%s: %s; trying again in %.1fs", what, rest.describe(error), delay)
            RECONCILE_TOTAL.labels(controller, "requeue").inc()
            return
        except Exception:  # a bug: say so loudly, and keep every other key going
            delay = self._back_off(key)
            log.exception("reconciling %s failed; trying again in %.1fs", key, delay)
            RECONCILE_TOTAL.labels(controller, "error").inc()
            return
        finally:
            RECONCILE_TIME.labels(controller).observe(time.monotonic() - started)
        RECONCILE_TOTAL.labels(controller, "success").inc()
        self.backoff.pop(key, None)
        self.retry_at.pop(key, None)
        await asyncio.sleep(0)  # let the webhook and the watches in between keys

    def _back_off(self, key: str) -> float:
        """Look at `key` again after twice its last delay (0.5 s first, 10 s at most)."""
        delay = min(MAX_BACKOFF, self.backoff.get(key, 0.0) * 2 or 0.5)
        self.backoff[key] = delay
        self.retry_at[key] = time.monotonic() + delay
        self.dirty.add(key)
        return delay

    # --- one flavor ------------------------------------------------------

    async def _flavor(self, name: str, work: "FlavorWork") -> None:
        for stage, writes in work.writes.items():
            if isinstance(writes, str):
                self._refused(name, stage, writes)
                continue
            try:
                await self._write(stage, writes)
            except ApiException as error:
                if rest.retryable(error):
                    raise
                self._refused(name, stage, rest.message_of(error))
                continue
            if work.repairs.get(stage):
                self.contests.put_back(work.repairs[stage], time.monotonic())
            if self.errors.pop((name, stage), None) is not None:
                self.enqueue(TRAINS)
                self.enqueue(name)  # its status no longer says the write is refused
        view = work.view
        if view is None:
            if work.status is not None:  # a Flavor that cannot be read says so
                current, desired = work.status
                await self._patch_status(
                    self.flavors, "Flavor", name, work.version, current, desired
                )
            return
        version = view.resource_version
        if work.finalizer is not None:
            finalizers = [f for f in view.finalizers if f != names.FINALIZER]
            if work.finalizer is FinalizerAction.ADD:
                finalizers.append(names.FINALIZER)
            control = self.settings.namespaces.control
            done = await act.set_finalizers(self.api, control, name, version, finalizers)
            if done is None:
                self.enqueue(name)
                return
            self.flavors.remember(done)
            if work.finalizer is FinalizerAction.REMOVE:
                return  # the Flavor is going
            version = done["metadata"]["resourceVersion"]
        if work.status is not None:
            current, desired = work.status
            await self._patch_status(self.flavors, "Flavor", name, version, current, desired)

    def _refused(self, flavor: str, stage: Stage, message: str) -> None:
        if self.errors.get((flavor, stage)) != message:
            log.warning(
                "flavor %s in %s: the API server refused a write: %s", flavor, stage, message
            )
            self.errors[(flavor, stage)] = message
            self.enqueue(TRAINS)
            self.enqueue(flavor)  # its status says so

    async def _write(self, stage: Stage, writes: Any) -> None:
        watched = self.stages[stage]
        for manifest in writes.apply:
            applied = await act.apply(self.api, manifest)
            log.info(
                "applied %s %s/%s",
                manifest["kind"],
                manifest["metadata"]["namespace"],
                manifest["metadata"]["name"],
            )
            added = added_by_others(applied)
            if added or differs(applied, manifest):
                # What another field manager added (`kubectl set env`, a nodeSelector, a
                # route's hostnames): apply leaves what it does not own.
                applied = await act.replace(self.api, manifest, applied)
                log.info(
                    "replaced %s %s/%s: what was added by hand is gone (%s)",
                    manifest["kind"],
                    manifest["metadata"]["namespace"],
                    manifest["metadata"]["name"],
                    ", ".join(added) or "a list of the spec",
                )
            if manifest["kind"] in watched:
                watched[manifest["kind"]].remember(applied)
        for removal in writes.delete:
            if await act.delete(self.api, removal.kind, removal.namespace, removal.name):
                log.info("deleted %s %s/%s", removal.kind, removal.namespace, removal.name)

    async def _patch_status(
        self,
        informer: Informer,
        kind: str,
        name: str,
        resource_version: str,
        current: dict[str, Any],
        desired: dict[str, Any],
    ) -> bool:
        """Write the status difference; False on a conflict (the key is looked at again)."""
        control = self.settings.namespaces.control
        done = await act.patch_status(
            self.api, kind, control, name, resource_version, current, desired
        )
        if done is None:
            log.info("%s %s changed meanwhile; looking again", kind, name)
            self.enqueue(TRAINS if kind == "Train" else name)
            return False
        if done:
            informer.remember(done)
        return True

    # --- the trains ------------------------------------------------------

    def _look_at_trains(
        self, world: World
    ) -> tuple[dict[str, tuple[TrainStep, dict[str, Any], dict[str, Any]]], Due | None]:
        """Off the event loop: the gauges, the verification checks due, and each changed
        train's step with its status before and after, as written (for a train of 2,000 cars
        each takes milliseconds)."""
        self._export(world)
        due = self.verifier.due(world)
        trains = world.trains_by_name
        steps = {
            name: (step, trains[name].status.to_wire(), step.status.to_wire())
            for name, step in step_trains(world, self.settings).items()
        }
        return steps, due

    def _export(self, world: World) -> None:
        """The trains' phases and the flavors' states, as gauges."""
        trains = {t.name: t.status.phase for t in world.trains}
        for name in self._exported - trains.keys():
            for phase in Phase:
                TRAIN_PHASE.remove(name, phase.value)
        for name, current in trains.items():
            for phase in Phase:
                TRAIN_PHASE.labels(name, phase.value).set(1 if phase == current else 0)
        self._exported = set(trains)
        ready = sum(
            any(c.type == "Ready" and c.status == "True" for c in v.status.conditions)
            for v in world.flavors.values()
        )
        FLAVORS.labels("ready").set(ready)
        FLAVORS.labels("pending").set(len(world.flavors) - ready)
        FLAVORS.labels("unreadable").set(len(world.unreadable))

    async def _trains(self, world: World) -> None:
        self.in_motion = any(t.status.phase not in FINISHED for t in world.trains)
        steps, due = await asyncio.to_thread(self._look_at_trains, world)
        self.verifier.follow(due)
        trains = {t.name: t for t in world.trains}
        control = self.settings.namespaces.control
        for name, (step, current, desired) in steps.items():
            train = trains[name]
            written = await self._patch_status(
                self.trains, "Train", name, train.resource_version, current, desired
            )
            if not written:
                continue
            if step.status.phase != train.status.phase and step.status.phase is not None:
                TRAIN_TRANSITIONS.labels(step.status.phase).inc()
            for notice in step.notices:
                log.info("train %s: %s: %s", name, notice.reason, notice.message)
                url = self.settings.notifications.webhook_url
                if notice.notify and url:  # first: the status that announces it is written
                    task = asyncio.create_task(self._notify(train, str(url), notice))
                    self._notifications.add(task)
                    task.add_done_callback(self._notifications.discard)
                await self._post_event(train, control, notice)
        if steps:
            return  # form and prune on the world those steps produced
        if self.changes_formed >= self.changes_seen:
            return  # only time passed: nothing new can form, nothing new has ended
        if time.monotonic() - self.last_flavor_change < FORMATION_SETTLE:
            self.trains_not_before = self.last_flavor_change + FORMATION_SETTLE
            self.dirty.add(TRAINS)
            return
        seen = self.changes_seen
        started = time.monotonic()
        try:
            formation = await asyncio.to_thread(form_train, world, self.settings)
            if formation is not None:
                await self._form(formation)
        finally:
            self.formations += 1
            for name in self.waiting_status:  # their status, as it is now, is written
                self.enqueue(name)
        self.forming = time.monotonic() - started
        pruning = await asyncio.to_thread(prune, world, self.settings)  # walks every car
        for kind, names_ in (("Train", pruning.trains), ("ControllerRevision", pruning.revisions)):
            for name in names_:
                if await act.delete(self.api, kind, control, name):
                    log.info("deleted %s %s: beyond trainHistoryLimit", kind, name)
        self.changes_formed = seen

    async def _form(self, formation: Formation) -> None:
        async def snapshot(manifest: dict[str, Any]) -> None:
            done = await act.create(self.api, manifest)  # None: the same name, same content
            if done is not None:
                self.revisions.remember(done)

        kept = self.revisions.items
        await at_most(
            WRITERS, [m for m in formation.revisions if m["metadata"]["name"] not in kept], snapshot
        )
        train = formation.train
        if self.key is not None:
            signature = train_signature(
                formation.name, TrainSpec.model_validate(train["spec"]), self.key
            )
            train["metadata"].setdefault("annotations", {})[SIGNATURE] = signature
        done = await act.create(self.api, train)
        if done is not None:
            self.trains.remember(done)
            log.info(
                "formed train %s with %d car(s)",
                train["metadata"]["name"],
                len(train["spec"]["cars"]),
            )

    async def _notify(self, train: TrainView, url: str, notice: Notice) -> None:
        """Tell the engineer; a message the webhook never took is counted and is an Event."""
        why = await notify(url, notice.message)
        if why is None:
            return
        self.notifications_failed += 1
        NOTIFICATION_FAILURES.inc()
        failed = Notice(
            "Warning",
            "NotificationFailed",
            f"the notification of {notice.reason} was not delivered: {why}. It said: "
            f"{notice.message}",
        )
        await self._post_event(train, self.settings.namespaces.control, failed)

    async def _post_event(self, train: TrainView, namespace: str, notice: Notice) -> None:
        involved = {
            "apiVersion": names.API_VERSION,
            "kind": "Train",
            "name": train.name,
            "namespace": namespace,
            "uid": train.uid,
        }
        try:
            await act.post_event(self.api, involved, notice.reason, notice.message, notice.type)
        # An Event is a report, never a reason to stop: the status that says the same is
        # written, and a failure here must not make the pass look failed.
        except rest.FAILURES as error:
            log.warning(
                "could not post Event %s for train %s: %s",
                notice.reason,
                train.name,
                rest.describe(error),
            )
