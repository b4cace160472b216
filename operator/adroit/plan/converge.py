"""From what a flavor should have in a stage to the writes that get it there.

Blue-green per stage: new Deployments first; Services and the budget switch
to them only once every one is Available; what is left over goes last. An
object whose applied hash already matches is never written again.
"""

from dataclasses import dataclass

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


def _hash(manifest: Manifest) -> str:
    return str(manifest["metadata"]["annotations"][APPLIED])


def _index(workloads: list[Workload], others: list[Managed]) -> dict[tuple[str, str], str]:
    found = {("Deployment", w.name): w.applied_hash for w in workloads}
    found.update({(o.kind, o.name): o.applied_hash for o in others})
    return found


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
    changed = [
        m for m in plan.workloads if found.get((m["kind"], m["metadata"]["name"])) != _hash(m)
    ]
    if changed or not health(plan, world, flavor).available:
        return Writes(apply=tuple(changed))
    routing = [m for m in plan.routing if found.get((m["kind"], m["metadata"]["name"])) != _hash(m)]
    keep = {(m["kind"], m["metadata"]["name"]) for m in plan.workloads + plan.routing}
    leftovers = [key for key in found if key not in keep]
    return Writes(
        apply=tuple(routing),
        delete=tuple(Removal(kind, name, ns) for kind, name in leftovers) if not routing else (),
    )


def health(plan: StagePlan, world: StageWorld, flavor: str) -> Health:
    workloads, others = world.of(flavor)
    by_name = {w.name: w for w in workloads}
    wanted = ready = 0
    available = True
    problem: str | None = None
    stuck = False
    for manifest in plan.workloads:
        name = manifest["metadata"]["name"]
        wanted += int(manifest["spec"]["replicas"])
        seen = by_name.get(name)
        if seen is None or seen.applied_hash != _hash(manifest):
            available = False
            problem = problem or f"Deployment {name} is being applied"
            continue
        ready += seen.ready_replicas
        if not seen.available:
            available = False
            problem = (
                problem
                or seen.problem
                or f"Deployment {name}: {seen.ready_replicas}/{seen.replicas} ready"
            )
            stuck = stuck or seen.stuck
    found = _index(workloads, others)
    keep = {(m["kind"], m["metadata"]["name"]) for m in plan.workloads + plan.routing}
    routed = all(found.get((m["kind"], m["metadata"]["name"])) == _hash(m) for m in plan.routing)
    converged = available and routed and set(found) <= keep
    return Health(converged, available, ready, wanted, None if available else problem, stuck)
