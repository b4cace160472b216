"""How long the pure planning takes that every change waits for, with N flavors in production.

    python bench/formation.py [--flavors 2000] [--runs 7]

No cluster: the plan's in-memory stand-in for the stages (tests/unit/sim.py)
takes N flavors to production through one train, then one more flavor
changes. Printed: forming the train for that change (a look at every flavor,
on the operator's worker thread while the change waits), the first time and
the median of the next runs, and one pass over every flavor's status (what
the flavor keys compute after a train moves). The first run pays for hashing
each flavor's spec; the operator keeps that hash with the flavor as long as
its resourceVersion is in the cache.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.sim import Sim, spec

from adroit.api.train import Phase
from adroit.plan.flavors import flavor_status
from adroit.plan.formation import form_train


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """The first run and the median of the next ones, in ms."""
    took = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        fn()
        took.append((time.perf_counter() - start) * 1000)
    return took[0], statistics.median(took[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavors", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    sim = Sim()
    for i in range(args.flavors):
        sim.apply_flavor(f"f{i:04d}", spec("v1"))
    for _ in range(20):  # verifyFor and approval: time passes, carol approves
        for train in sim.trains:
            if sim.phase(train) == Phase.AWAITING_APPROVAL:
                sim.approve(train)
        sim.run(seconds=40)
        sim.settle()
        if all(sim.phase(t) == Phase.DEPLOYED for t in sim.trains):
            break
    else:
        print("the flavors did not reach production", file=sys.stderr)
        return 1
    sim.apply_flavor("probe", spec("v1"))
    world = sim.world()

    first, median = timed(lambda: form_train(world, sim.settings), args.runs)
    formed = form_train(world, sim.settings)
    cars = len(formed.train["spec"]["cars"]) if formed else 0
    print(f"formation with {args.flavors} flavors in production ({cars} car):")
    print(f"  form_train          first {first:6.1f} ms, then median {median:6.1f} ms")
    views = list(world.flavors.values())
    first, median = timed(lambda: [flavor_status(v, world) for v in views], args.runs)
    print(f"  every flavor_status first {first:6.1f} ms, then median {median:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
