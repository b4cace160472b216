"""From what a flavor should have in a stage to the writes that get it there.

Blue-green per stage: new Deployments first; Services and the budget switch
to them only once every one is Available; what is left over goes last. An
object is written again only when its applied hash differs from the
manifest's, or when it drifted: the live object no longer contains what the
manifest sets (replicas scaled, an image edited), or holds fields of its spec
that someone else added (a nodeSelector, a route's hostnames). A deleted
object is simply missing, and is applied again.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from adroit.plan.drift import drifted
from adroit.plan.render import APPLIED, Manifest, StagePlan
from adroit.plan.world import Managed, StageWorld, Workload


@dataclass(frozen=True)
class Removal:
    kind: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Writes:
    apply: tuple[Manifest, ...] = ()
    delete: tuple[Removal, ...] = ()

    def __add__(self, other: "Writes") -> "Writes":
        return Writes(self.apply + other.apply, self.delete + other.delete)

    def __bool__(self) -> bool:
        return bool(self.apply or self.delete)


@dataclass(frozen=True)
class Health:
    """How far a stage is from its plan."""

    converged: bool  # everything applied, Available, routed, and nothing left over
    available: bool  # every planned Deployment is applied and Available
    ready_replicas: int
    wanted_replicas: int
    problem: str | None = None
    stuck: bool = False


Key = tuple[str, str]  # kind, name


def _hash(manifest: Manifest) -> str:
    return str(manifest["metadata"]["annotations"][APPLIED])


def _key(manifest: Manifest) -> Key:
    return (manifest["kind"], manifest["metadata"]["name"])


def _index(
    workloads: Sequence[Workload], others: Sequence[Managed]
) -> dict[Key, Workload | Managed]:
    found: dict[Key, Workload | Managed] = {("Deployment", w.name): w for w in workloads}
    found.update({(o.kind, o.name): o for o in others})
    return found


def _current(manifest: Manifest, found: dict[Key, Workload | Managed]) -> bool:
    """Whether the live object is what the manifest says."""
    seen = found.get(_key(manifest))
    return (
        seen is not None
        and seen.applied_hash == _hash(manifest)
        and not drifted(seen.body, manifest)
        and not seen.added
    )


def converge(flavor: str, plan: StagePlan | None, world: StageWorld) -> Writes:
    """The writes that move `flavor` in this stage towards `plan` (None: nothing at all)."""
    workloads, others = world.of(flavor)
    ns = world.namespace
    if plan is None:
        return Writes(
            delete=tuple(Removal("Deployment", w.name, ns) for w in workloads)
            + tuple(Removal(o.kind, o.name, ns) for o in others)
        )
    found = _index(workloads, others)
    if not found:
        # A first rollout in this stage: nothing serves yet, so nothing has to keep serving
        # while the Deployments come up. Everything at once saves a round trip per flavor.
        return Writes(apply=plan.workloads + plan.routing)
    current = {_key(m): _current(m, found) for m in plan.workloads + plan.routing}
    changed = [m for m in plan.workloads if not current[_key(m)]]
    if changed or not _health(plan, found, current).available:
        return Writes(apply=tuple(changed))
    routing = [m for m in plan.routing if not current[_key(m)]]
    leftovers = [key for key in found if key not in current]
    return Writes(
        apply=tuple(routing),
        delete=tuple(Removal(kind, name, ns) for kind, name in leftovers) if not routing else (),
    )


def health(plan: StagePlan, world: StageWorld, flavor: str) -> Health:
    found = _index(*world.of(flavor))
    current = {_key(m): _current(m, found) for m in plan.workloads + plan.routing}
    return _health(plan, found, current)


def _health(
    plan: StagePlan, found: dict[Key, Workload | Managed], current: dict[Key, bool]
) -> Health:
    wanted = ready = 0
    available = True
    problem: str | None = None
    stuck = False
    for manifest in plan.workloads:
        name = manifest["metadata"]["name"]
        replicas = int(manifest["spec"]["replicas"])
        wanted += replicas
        seen = found.get(("Deployment", name))
        if not isinstance(seen, Workload) or not current[_key(manifest)]:
            available = False
            problem = problem or f"Deployment {name} is being applied"
            continue
        ready += seen.ready_replicas
        if not seen.available or seen.available_count < replicas:
            available = False
            problem = (
                problem
                or seen.problem
                or f"Deployment {name}: {seen.available_count}/{replicas} available"
            )
            stuck = stuck or seen.stuck
    routed = all(current[_key(m)] for m in plan.routing)
    converged = available and routed and set(found) <= set(current)
    return Health(converged, available, ready, wanted, None if available else problem, stuck)
