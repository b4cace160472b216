"""What kept finished trains cost a flavor's status, with trainHistoryLimit of them.

    python bench/history.py [--trains 50] [--cars 2000] [--runs 7]

No cluster. A flavor whose change waits for a train asks for the latest train
that carried it (World.latest_car), on the event loop; a flavor with nothing in
production asks for what the last Deployed train put there (World.shipped_car:
every flavor of a first rollout does). Printed: building the latest-car index
on a fresh snapshot of the world whose finished trains were seen before (what
each batch of keys pays: the operator keeps a finished train's view between
passes), the first time, when every train is new, and the first look for a
shipped car on a fresh snapshot.
"""

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from adroit.api.train import Car, CarState, CarStatus, Phase, TrainSpec, TrainStatus
from adroit.plan.world import TrainView, World


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trains", type=int, default=50)
    parser.add_argument("--cars", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    spec = TrainSpec(
        engineer="bob",
        cars=[Car(flavor=f"flavor-{i:04d}", revision="abcdef12") for i in range(args.cars)],
    )
    status = TrainStatus(
        phase=Phase.DEPLOYED,
        cars=[
            CarStatus(flavor=c.flavor, staging=CarState.VERIFIED, production=CarState.DEPLOYED)
            for c in spec.cars
        ],
    )
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    trains = tuple(
        TrainView(
            name=f"train-{i:03d}",
            created_at=start + timedelta(minutes=i),
            spec=spec,
            status=status,
        )
        for i in range(args.trains)
    )
    took = []
    for _ in range(args.runs + 1):
        world = World(now=start, trains=trains)
        began = time.perf_counter()
        world.latest_car("flavor-0001")
        took.append((time.perf_counter() - began) * 1000)
    shipped = []
    for _ in range(args.runs):
        world = World(now=start, trains=trains)
        began = time.perf_counter()
        world.shipped_car("nothing-shipped")  # the worst case: asks every train
        shipped.append((time.perf_counter() - began) * 1000)
    print(f"{args.trains} finished trains of {args.cars} cars each")
    print(f"  latest car index, first snapshot:  {took[0]:8.1f} ms")
    print(f"  latest car index, later snapshots: {statistics.median(took[1:]):8.1f} ms (median)")
    print(f"  shipped car, first look:           {statistics.median(shipped):8.2f} ms (median)")


if __name__ == "__main__":
    main()
