"""How much time verification checks add to a train: `make bench-verification`.

Starts the local MLServer and Prometheus (hack/verification/up.sh), runs the operator
in-process in namespaces of its own (as the integration tests do), and times a flavor from
`kubectl apply` to AwaitingApproval, ROUNDS times each: without checks, and with two
predictions, a 1-second load check at 20 requests/s and two metric queries. verifyFor is
the same for both (VERIFY_FOR, default 10s); the difference is what the checks add.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.integration.operator import own_operator  # noqa: E402
from tests.kube import apply  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
VERIFY_FOR = os.environ.get("VERIFY_FOR", "10s")
HERE = Path(__file__).resolve().parent
FLOWERS = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]}
)
CHECKS = {
    "predictions": [
        {"name": "setosa", "body": FLOWERS, "expect": {"outputs": '{"predict": [0]}'}},
        {"name": "status-only", "body": FLOWERS, "maxLatency": "200ms"},
    ],
    "load": {"requestsPerSecond": 20, "duration": "1s", "maxP99Latency": "500ms"},
    "metrics": [
        {
            "name": "failures",
            "query": 'sum(increase(model_infer_request_failure_total{model="$model"}[$window]))',
            "below": 1,
        },
        {
            "name": "mean-latency",
            "query": 'max(model_infer_request_duration_sum{model="$model"}'
            ' / model_infer_request_duration_count{model="$model"})',
            "below": 0.5,
        },
    ],
}


def settings(endpoints: dict[str, str]) -> dict[str, Any]:
    return {
        "runtimes": {
            "mlserver": {"image": "registry.local/adroit/mlserver:1.7.1", "protocol": "v2"}
        },
        "defaultRuntime": "mlserver",
        "timeouts": {"verifyFor": VERIFY_FOR},
        "verification": {
            "endpoint": endpoints["MLSERVER_URL"],
            "prometheusUrl": endpoints["PROMETHEUS_URL"],
        },
    }


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="adroit-bench-verification-"))
    subprocess.run([str(HERE / "up.sh"), str(folder / "servers")], check=True)
    endpoints = dict(
        line.split("=", 1) for line in (folder / "servers" / "endpoints.env").read_text().split()
    )
    took: dict[str, list[float]] = {"without checks": [], "with checks": []}
    try:
        with own_operator(folder, **settings(endpoints)) as op:
            op.start()
            for i in range(ROUNDS):
                for label, checks in (("without checks", None), ("with checks", CHECKS)):
                    manifest = op.flavor(f"iris-{i}-{'checked' if checks else 'plain'}")
                    manifest["spec"]["model"] = {"name": "iris", "version": "v1"}
                    if checks:
                        manifest["spec"]["verification"] = checks
                    known = {t["metadata"]["name"] for t in op.trains()}
                    started = time.monotonic()
                    apply(manifest, user="bob")
                    train = op.new_train(known)
                    op.wait_phase(train, "AwaitingApproval", timeout=300)
                    took[label].append(time.monotonic() - started)
                    op.get("train", train)
                    subprocess.run(
                        [
                            "kubectl",
                            "annotate",
                            "train",
                            train,
                            "-n",
                            op.ns,
                            "adroit.dev/abort=true",
                        ],
                        check=True,
                        capture_output=True,
                    )
                    op.wait_phase(train, "Aborted")
    finally:
        subprocess.run([str(HERE / "down.sh"), str(folder / "servers")], check=False)
    print(f"\napply to AwaitingApproval, verifyFor {VERIFY_FOR}, {ROUNDS} rounds (median):")
    for label, values in took.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {label:15} {statistics.median(values):5.1f} s   ({shown})")
    added = statistics.median(took["with checks"]) - statistics.median(took["without checks"])
    print(f"  verification adds {added:.1f} s to a train")
    return 0


if __name__ == "__main__":
    sys.exit(main())
