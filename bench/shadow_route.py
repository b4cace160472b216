"""How long a shadow change takes to reach the route after a person approves it.

    make bench

With the local settings, a flavor is shipped, then given a shadow mirrored at
10 %; the clock runs from the approval annotation until the flavor's HTTPRoute
carries the RequestMirror filter, and again for a 70/30 split. ROUNDS times.
"""

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from scratch import Scratch, kubectl, operator_in_scratch, report, wait

ROUNDS = int(os.environ.get("ROUNDS", "3"))
SHADOW = "c80c6746-9dc7-417a-933d-9ddfc4afe3aa"


def rule(route: dict[str, Any]) -> dict[str, Any]:
    return dict(((route.get("spec") or {}).get("rules") or [{}])[0])


def approve_and_time(scratch: Scratch, reached: Callable[[dict[str, Any]], bool]) -> float:
    """Apply the sample, approve its train as alice; seconds until the route is `reached`."""
    known = scratch.trains()
    scratch.apply()
    train = scratch.new_train(known)
    scratch.wait_phase(train, "AwaitingApproval")
    start = time.monotonic()
    kubectl("annotate", "-n", scratch.ns, train, "adroit.dev/approved=true", "--context", "alice")

    def route() -> dict[str, Any]:
        found = kubectl(
            "get",
            "httproute",
            "ads-pctr-v5",
            "-n",
            scratch.production,
            "-o",
            "json",
            "--ignore-not-found",
        )
        return dict(json.loads(found or "{}"))

    wait(lambda: reached(route()))
    return time.monotonic() - start


def one_round() -> dict[str, float]:
    with operator_in_scratch(admission_port=19444) as scratch:
        approve_and_time(scratch, lambda r: bool(rule(r)))
        scratch.sample["spec"]["shadow"] = {"model": {"version": SHADOW}, "mirrorPercent": 10}
        mirror = approve_and_time(scratch, lambda r: "filters" in rule(r))
        scratch.sample["spec"]["shadow"] = {"model": {"version": SHADOW}, "trafficPercent": 30}
        live = approve_and_time(
            scratch, lambda r: [b.get("weight") for b in rule(r).get("backendRefs", [])] == [70, 30]
        )
    return {
        "approval to mirror 10 % on the route (s)": mirror,
        "approval to 70/30 on the route (s)": live,
    }


def main() -> int:
    if "alice" not in kubectl("config", "get-contexts", "-o", "name").split():
        print("needs the local cluster's kubeconfig (context alice)")
        return 1
    rounds = [one_round() for _ in range(ROUNDS)]
    report(f"a shadow change reaching the HTTPRoute after approval, {ROUNDS} rounds:", rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
