"""The README's flow, timed: apply a Flavor, approve its train, wait for Deployed.

    make bench            (against the local cluster, or the one KUBECONFIG names)

Runs the operator in-process with the local settings, in namespaces of its own,
and prints how long each step took and how many write requests the operator
sent to the API server for the whole train. Repeats ROUNDS times.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from kopf.testing import KopfRunner

ROUNDS = int(os.environ.get("ROUNDS", "3"))
REPO = Path(__file__).resolve().parents[1]
WRITES: list[str] = []
_request = aiohttp.ClientSession._request


async def _counting(
    self: aiohttp.ClientSession, method: str, url: Any, *args: Any, **kw: Any
) -> Any:
    if method.upper() not in ("GET", "HEAD"):
        WRITES.append(f"{method.upper()} {url}")
    return await _request(self, method, url, *args, **kw)


aiohttp.ClientSession._request = _counting  # type: ignore[method-assign]


def kubectl(*args: str) -> str:
    return subprocess.run(["kubectl", *args], check=True, capture_output=True, text=True).stdout


def wait_phase(ns: str, train: str, phase: str) -> None:
    kubectl(
        "wait",
        "-n",
        ns,
        f"train/{train}",
        f"--for=jsonpath={{.status.phase}}={phase}",
        "--timeout=180s",
    )


def one_round(tmp: Path) -> dict[str, float]:
    ns = f"adroit-bench-{uuid.uuid4().hex[:5]}"
    names = {"control": ns, "staging": f"{ns}-staging", "production": f"{ns}-production"}
    for name in names.values():
        kubectl("create", "namespace", name)
    settings = yaml.safe_load((REPO / "settings" / "local.yaml").read_text())
    settings["namespaces"] = names
    path = tmp / f"{ns}.yaml"
    path.write_text(yaml.safe_dump(settings))
    os.environ["ADROIT_SETTINGS"] = str(path)
    sample = yaml.safe_load((REPO / "deploy" / "samples" / "ads-pctr-v5.yaml").read_text())
    sample["metadata"]["namespace"] = ns
    try:
        with KopfRunner(["run", "--standalone", "--namespace", ns, "-m", "adroit.handlers"]):
            time.sleep(1)
            WRITES.clear()
            start = time.monotonic()
            subprocess.run(
                ["kubectl", "apply", "-f", "-"],
                input=json.dumps(sample),
                check=True,
                capture_output=True,
                text=True,
            )
            while not (train := kubectl("get", "trains", "-n", ns, "-o", "name").strip()):
                time.sleep(0.1)
            train = train.split("/")[-1]
            formed = time.monotonic()
            wait_phase(ns, train, "AwaitingApproval")
            waiting = time.monotonic()
            kubectl("annotate", "-n", ns, f"train/{train}", "adroit.dev/approved=true")
            wait_phase(ns, train, "Deployed")
            deployed = time.monotonic()
            time.sleep(3)  # let the last status writes land
            writes = len(WRITES)
    finally:
        kubectl(
            "patch",
            "-n",
            ns,
            "flavor",
            "ads-pctr-v5",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )
        kubectl("delete", "namespace", *names.values(), "--wait=false")
    return {
        "apply to train formed (s)": formed - start,
        "apply to AwaitingApproval (s)": waiting - start,
        "approve to Deployed (s)": deployed - waiting,
        "apply to Deployed, without the human (s)": (waiting - start) + (deployed - waiting),
        "API writes for the whole train": float(writes),
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        rounds = [one_round(Path(tmp)) for _ in range(ROUNDS)]
    verify = yaml.safe_load((REPO / "settings" / "local.yaml").read_text())["timeouts"]["verifyFor"]
    print(f"train of one flavor, local settings (verifyFor {verify}), {ROUNDS} rounds:")
    print("  median [min-max]")
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(
            f"  {key:45s} {statistics.median(values):7.1f}  [{min(values):.1f}-{max(values):.1f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
