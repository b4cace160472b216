"""How long a shadow change takes to reach the route after a person approves it.

    make bench

With the local settings, a flavor is shipped, then given a shadow mirrored at
10 %; the clock runs from the approval annotation until the flavor's HTTPRoute
carries the RequestMirror filter, and again for a 70/30 split. ROUNDS times.
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

import yaml
from kopf.testing import KopfRunner

ROUNDS = int(os.environ.get("ROUNDS", "3"))
REPO = Path(__file__).resolve().parents[1]
SHADOW = "c80c6746-9dc7-417a-933d-9ddfc4afe3aa"


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", *args], input=stdin, check=True, capture_output=True, text=True
    )
    return done.stdout


def wait(check: Any, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.05)


def approve_and_time(ns: str, production: str, sample: dict[str, Any], reached: Any) -> float:
    known = set(kubectl("get", "trains", "-n", ns, "-o", "name").split())
    kubectl("apply", "-f", "-", stdin=json.dumps(sample))
    wait(lambda: set(kubectl("get", "trains", "-n", ns, "-o", "name").split()) - known)
    train = (set(kubectl("get", "trains", "-n", ns, "-o", "name").split()) - known).pop()
    kubectl(
        "wait", "-n", ns, train, "--for=jsonpath={.status.phase}=AwaitingApproval", "--timeout=180s"
    )
    start = time.monotonic()
    kubectl("annotate", "-n", ns, train, "adroit.dev/approved=true", "--context", "alice")
    wait(
        lambda: reached(
            json.loads(
                kubectl(
                    "get",
                    "httproute",
                    "ads-pctr-v5",
                    "-n",
                    production,
                    "-o",
                    "json",
                    "--ignore-not-found",
                )
                or "{}"
            )
        )
    )
    return time.monotonic() - start


def one_round(tmp: Path) -> dict[str, float]:
    ns = f"adroit-bench-{uuid.uuid4().hex[:5]}"
    names = {"control": ns, "staging": f"{ns}-staging", "production": f"{ns}-production"}
    for name in names.values():
        kubectl("create", "namespace", name)
    settings = yaml.safe_load((REPO / "settings" / "local.yaml").read_text())
    settings["namespaces"] = names
    settings["admission"] = {"port": 19444}
    path = tmp / f"{ns}.yaml"
    path.write_text(yaml.safe_dump(settings))
    os.environ["ADROIT_SETTINGS"] = str(path)
    sample = yaml.safe_load((REPO / "deploy" / "samples" / "ads-pctr-v5.yaml").read_text())
    sample["metadata"]["namespace"] = ns

    def rule(route: dict[str, Any]) -> dict[str, Any]:
        return ((route.get("spec") or {}).get("rules") or [{}])[0]

    try:
        with KopfRunner(["run", "--standalone", "--namespace", ns, "-m", "adroit.handlers"]):
            wait(
                lambda: (
                    kubectl(
                        "get",
                        "mutatingwebhookconfiguration",
                        f"adroit-{ns}",
                        "--ignore-not-found",
                        "-o",
                        "name",
                    )
                    != ""
                )
            )
            approve_and_time(ns, names["production"], sample, lambda r: bool(rule(r)))
            sample["spec"]["shadow"] = {"model": {"version": SHADOW}, "mirrorPercent": 10}
            mirror = approve_and_time(
                ns, names["production"], sample, lambda r: "filters" in rule(r)
            )
            sample["spec"]["shadow"] = {"model": {"version": SHADOW}, "trafficPercent": 30}
            live = approve_and_time(
                ns,
                names["production"],
                sample,
                lambda r: [b.get("weight") for b in rule(r).get("backendRefs", [])] == [70, 30],
            )
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
        kubectl("delete", "mutatingwebhookconfiguration", f"adroit-{ns}", "--ignore-not-found")
    return {
        "approval to mirror 10 % on the route (s)": mirror,
        "approval to 70/30 on the route (s)": live,
    }


def main() -> int:
    if "alice" not in kubectl("config", "get-contexts", "-o", "name").split():
        print("needs the local cluster's kubeconfig (context alice)")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        rounds = [one_round(Path(tmp)) for _ in range(ROUNDS)]
    print(f"a shadow change reaching the HTTPRoute after approval, {ROUNDS} rounds:")
    print("  median [min-max]")
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        print(
            f"  {key:45s} {statistics.median(values):7.2f}  [{min(values):.2f}-{max(values):.2f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
