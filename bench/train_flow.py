"""The README's flow, timed: apply a Flavor, approve its train, wait for Deployed.

    make bench            (against the local cluster, or the one KUBECONFIG names)

Runs the operator in-process with the local settings, in namespaces of its own,
and prints how long each step took and how many write requests the operator
sent to the API server for the whole train. Repeats ROUNDS times.
"""

import os
import sys
import time
from typing import Any

import aiohttp
import yaml
from scratch import REPO, kubectl, operator_in_scratch, report

ROUNDS = int(os.environ.get("ROUNDS", "3"))
WRITES: list[str] = []
_request = aiohttp.ClientSession._request


async def _counting(
    self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kw: Any
) -> Any:
    if method.upper() not in ("GET", "HEAD"):
        WRITES.append(f"{method.upper()} {url}")
    return await _request(self, method, url, *args, **kw)


aiohttp.ClientSession._request = _counting  # type: ignore[method-assign]


def one_round() -> dict[str, float]:
    with operator_in_scratch(admission_port=19445) as scratch:
        WRITES.clear()
        start = time.monotonic()
        scratch.apply()
        train = scratch.new_train(set())
        formed = time.monotonic()
        scratch.wait_phase(train, "AwaitingApproval")
        waiting = time.monotonic()
        kubectl(
            "annotate", "-n", scratch.ns, train, "adroit.dev/approved=true", "--context", "alice"
        )
        scratch.wait_phase(train, "Deployed")
        deployed = time.monotonic()
        time.sleep(3)  # let the last status writes land
        writes = len(WRITES)
    return {
        "apply to train formed (s)": formed - start,
        "apply to AwaitingApproval (s)": waiting - start,
        "approve to Deployed (s)": deployed - waiting,
        "apply to Deployed, approved at once (s)": deployed - start,
        "API writes for the whole train": float(writes),
    }


def main() -> int:
    rounds = [one_round() for _ in range(ROUNDS)]
    verify = yaml.safe_load((REPO / "settings" / "local.yaml").read_text())["timeouts"]["verifyFor"]
    report(f"train of one flavor, local settings (verifyFor {verify}), {ROUNDS} rounds:", rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
