"""How long `kubectl adroit status` takes with 2,000 flavors and 50 finished trains.

    make bench-status        (python bench/status.py [--flavors 2000] [--trains 50] [--runs 7])

In a namespace of its own, as an administrator, it creates the Flavors and
Trains directly through the API (no operator runs), each with the status an
operator would have written: every flavor up to date in staging and
production, put there by one of the trains, every train Deployed with its
history, cars and conditions (written through the status subresource). Then
it runs `kubectl adroit status` as a person would, several times, and prints
the median and the slowest wall time next to `kubectl get flavors,trains` on
the same namespace. The goal is under one second. The namespace is deleted
afterwards.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adroit.api.flavor import FlavorSpec
from adroit.plan.revision import flavor_revision
from adroit.tools.client import MERGE, Client, resource_path
from adroit.tools.kubeconfig import connect

GOAL = 1.0  # seconds


def flavor_spec(i: int) -> dict[str, Any]:
    return FlavorSpec.model_validate(
        {
            "owner": f"team-{i % 20}",
            "model": {
                "name": f"model_{i}",
                "version": uuid.UUID(int=i).hex,
                "configPath": f"model_{i}/config.yaml",
                "runtime": "scikit-learn-2022-10",
            },
            "instances": {"memoryPerProcMiB": 1500, "minProdContainers": 3},
        }
    ).to_wire()


def condition(type_: str, status: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
        "observedGeneration": 1,
    }


def flavor_status(revision: str, train: str, at: str) -> dict[str, Any]:
    stage = {
        "revision": revision,
        "modelVersion": "v",
        "readyContainers": 3,
        "wantedContainers": 3,
        "train": train,
    }
    traffic = {"primaryPercent": 100, "shadowPercent": 0, "mirrorPercent": 0}
    return {
        "observedGeneration": 1,
        "revision": revision,
        "staging": {**stage, "readyContainers": 1, "wantedContainers": 1},
        "production": {**stage, "traffic": traffic},
        "conditions": [
            condition("PendingChanges", "False", "UpToDate", f"revision {revision} is running", at),
            condition("InProduction", "True", "Running", f"revision {revision}", at),
            condition("Ready", "True", "Running", f"revision {revision} runs in production", at),
        ],
    }


def train_status(cars: list[str], start: datetime) -> dict[str, Any]:
    steps = ["Queued", "Staging", "Verifying", "AwaitingApproval", "Promoting", "Deployed"]
    history = [
        {
            "phase": phase,
            "at": (start + timedelta(minutes=5 * n)).isoformat().replace("+00:00", "Z"),
            "reason": "Step",
            "message": f"the train entered {phase}",
            **({"by": "carol"} if phase == "Promoting" else {}),
        }
        for n, phase in enumerate(steps)
    ]
    at = history[-1]["at"]
    return {
        "observedGeneration": 1,
        "phase": "Deployed",
        "reason": "Promoted",
        "message": "every car runs in production",
        "carCount": len(cars),
        "cars": [{"flavor": c, "staging": "Verified", "production": "Deployed"} for c in cars],
        "approval": {"by": "carol", "groups": ["adroit:approvers"], "at": at},
        "history": history,
        "conditions": [
            condition(t, "True", r, "", at)
            for t, r in (
                ("Verified", "VerifiedInStaging"),
                ("Approved", "Approved"),
                ("Deployed", "Deployed"),
                ("Finished", "Deployed"),
            )
        ],
    }


def populate(client: Client, ns: str, flavors: int, trains: int) -> None:
    per_train = -(-flavors // trains)
    start = datetime.now(UTC) - timedelta(days=trains)
    names = [f"flavor-{i:05d}" for i in range(flavors)]
    specs = [flavor_spec(i) for i in range(flavors)]
    revisions = [flavor_revision(FlavorSpec.model_validate(s)) for s in specs]
    train_names = [f"train-bench-{t:03d}" for t in range(trains)]

    def make_flavor(i: int) -> None:
        body = {
            "apiVersion": "adroit.dev/v1alpha1",
            "kind": "Flavor",
            "metadata": {"name": names[i], "namespace": ns},
            "spec": specs[i],
        }
        client.request("POST", resource_path(ns, "flavors"), body=body)
        at = (start + timedelta(days=i // per_train)).isoformat().replace("+00:00", "Z")
        status = flavor_status(revisions[i], train_names[i // per_train], at)
        path = resource_path(ns, "flavors", names[i]) + "/status"
        client.request("PATCH", path, body={"status": status}, content_type=MERGE)

    def make_train(t: int) -> None:
        cars = range(t * per_train, min(flavors, (t + 1) * per_train))
        body = {
            "apiVersion": "adroit.dev/v1alpha1",
            "kind": "Train",
            "metadata": {"name": train_names[t], "namespace": ns},
            "spec": {
                "engineer": "bob",
                "cars": [{"flavor": names[i], "revision": revisions[i]} for i in cars],
            },
        }
        client.request("POST", resource_path(ns, "trains"), body=body)
        status = train_status([names[i] for i in cars], start + timedelta(days=t))
        path = resource_path(ns, "trains", train_names[t]) + "/status"
        client.request("PATCH", path, body={"status": status}, content_type=MERGE)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(make_flavor, range(flavors)))
        list(pool.map(make_train, range(trains)))


def timed(command: list[str]) -> tuple[float, float]:
    """Wall time, and the CPU time the command used (kubectl's and the plugin's): on a
    shared machine the wall time also counts the waits for a core."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def listing(client: Client, ns: str) -> float:
    """The two lists the plugin asks for, side by side, as it asks: the API server's part."""
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        lists = [
            pool.submit(client.get, resource_path(ns, p), resourceVersion="0")
            for p in ("flavors", "trains")
        ]
        for done in lists:
            done.result()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavors", type=int, default=2000)
    parser.add_argument("--trains", type=int, default=50)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the namespace, to look at it")
    args = parser.parse_args()
    ns = f"adroit-bench-status-{uuid.uuid4().hex[:5]}"
    client = Client(connect())
    client.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    try:
        began = time.perf_counter()
        populate(client, ns, args.flavors, args.trains)
        print(
            f"created {args.flavors} flavors and {args.trains} finished trains in {ns} "
            f"({time.perf_counter() - began:.0f} s)"
        )
        status = ["kubectl", "adroit", "status", "-n", ns]
        timed(status)  # a first run warms the API server's caches and the .pyc files
        ours = [timed(status) for _ in range(args.runs)]
        plain = [timed(["kubectl", "get", "flavors,trains", "-n", ns]) for _ in range(args.runs)]
        lists = [listing(client, ns) for _ in range(args.runs)]
        load = os.getloadavg()[0]
    finally:
        if not args.keep:
            client.request("DELETE", f"/api/v1/namespaces/{ns}")
    wall = [w for w, _ in ours]
    median = statistics.median(wall)
    print(
        f"kubectl adroit status: median {median:.2f} s, slowest {max(wall):.2f} s over "
        f"{args.runs} runs (goal < {GOAL:.0f} s: {'met' if median < GOAL else 'NOT met'}), "
        f"CPU {statistics.median(c for _, c in ours):.2f} s; kubectl get flavors,trains: "
        f"median {statistics.median(w for w, _ in plain):.2f} s, CPU "
        f"{statistics.median(c for _, c in plain):.2f} s; the API server's two lists alone: "
        f"median {statistics.median(lists):.2f} s; load average {load:.1f} on "
        f"{os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
