"""Run as in production: two replicas, one leader, killed under a train.

    make bench            (against the local cluster, or the one KUBECONFIG names)

Each round starts two `adroit run` processes (as two pods would run) with /metrics on,
ships one flavor, SIGKILLs the leader while the train is in Verifying and again while it
is in Promoting, and measures how long the other replica took to hold the Lease and to
move the train on. It prints the figures, each replica's peak RSS (VmHWM: what the
manifests' memory request and limit are set from) and its CPU time, and a sample of
/metrics taken from the leader while the train was on the tracks.
"""

import json
import os
import re
import socket
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import report
from tests.integration.operator import Operator, own_operator
from tests.kube import apply, eventually, kubectl

ROUNDS = int(os.environ.get("ROUNDS", "3"))
LEASE = "adroit-leader"
VERIFY_FOR = 40
# The lines of /metrics worth showing: the train's phase, the reconciler and the Lease.
SAMPLE = re.compile(
    r"^(adroit_train_phase\{.*\} 1\.0|adroit_flavors|adroit_approvals_total|"
    r"adroit_train_transitions_total|controller_runtime_reconcile_total|"
    r"leader_election_master_status|workqueue_depth|adroit_api_requests_total\{.*verb=\"(PATCH|POST)\")"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def holder(op: Operator) -> str:
    out = kubectl("get", "lease", LEASE, "-n", op.ns, "-o", "json", check=False).stdout
    identity = (json.loads(out or "{}").get("spec") or {}).get("holderIdentity") or ""
    return str(identity).split("_")[0]


def memory(pid: int) -> tuple[float, float]:
    """Peak and current RSS in MB, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


class Replicas:
    def __init__(self, op: Operator) -> None:
        self.op = op
        self.ports: dict[str, int] = {}
        self.peaks: list[float] = []
        self.cpu: list[float] = []

    def spawn(self, name: str) -> None:
        self.ports[name] = free_port()
        self.op.spawn(
            replica=name,
            args=(
                f"--metrics-bind-address=127.0.0.1:{self.ports[name]}",
                "--health-probe-bind-address=0",
            ),
        )

    def metrics(self, name: str) -> str:
        url = f"http://127.0.0.1:{self.ports[name]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def account(self, name: str) -> None:
        pid = self.op.processes[name].pid
        self.peaks.append(memory(pid)[0])
        self.cpu.append(cpu_seconds(pid))

    def kill(self, name: str) -> tuple[str, float]:
        """SIGKILL `name`; the successor and the seconds until it held the Lease."""
        self.account(name)
        killed = time.monotonic()
        self.op.kill(name)
        successor = eventually(
            lambda: (h := holder(self.op)) not in ("", name) and h, timeout=60, what="a successor"
        )
        return str(successor), time.monotonic() - killed


def one_round(sample: list[str]) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        own_operator(Path(tmp), timeouts={"verifyFor": f"{VERIFY_FOR}s"}) as op,
    ):
        pool = f"bench-{op.ns}"
        label = f"adroit-test/pool={pool}"
        kubectl("label", "node", "kwok-node-0", label)
        try:
            replicas = Replicas(op)
            replicas.spawn("replica-a")
            replicas.spawn("replica-b")
            leader = str(eventually(lambda: holder(op), what="a leader"))
            apply(
                op.flavor("ads", version="v1", nodeSelector={"adroit-test/pool": pool}), user="bob"
            )
            train = op.new_train()
            op.wait_phase(train, "Verifying")
            if not sample:
                sample.extend(
                    line for line in replicas.metrics(leader).splitlines() if SAMPLE.match(line)
                )
            leader, lease_verifying = replicas.kill(leader)
            waiting = op.wait_phase(train, "AwaitingApproval", timeout=120)["status"]
            at = {h["phase"]: datetime.fromisoformat(h["at"]) for h in waiting["history"]}
            # verifyFor counts from when Verifying began; what is left over is the failover's.
            added = (at["AwaitingApproval"] - at["Verifying"]).total_seconds() - VERIFY_FOR

            # Without the label, production pods cannot start: the train holds in Promoting.
            kubectl("label", "node", "kwok-node-0", "adroit-test/pool-")
            op.approve(train)
            op.wait_phase(train, "Promoting")
            eventually(lambda: op.deployments("production", "ads"), what="production")
            replicas.spawn("replica-c")
            killed = time.monotonic()
            leader, lease_promoting = replicas.kill(leader)
            kubectl("label", "node", "kwok-node-0", label)
            op.wait_phase(train, "Deployed", timeout=120)
            after_promoting = time.monotonic() - killed
            time.sleep(2)
            replicas.account(leader)
            production = op.deployments("production", "ads")
            if [d["metadata"]["generation"] for d in production] != [1]:
                raise SystemExit(f"production was rolled out more than once: {production}")
        finally:
            kubectl("label", "node", "kwok-node-0", "adroit-test/pool-", check=False)
    return {
        "Verifying: kill -> successor holds the Lease (s)": lease_verifying,
        "Verifying: time the failover added to verifyFor (s)": added,
        "Promoting: kill -> successor holds the Lease (s)": lease_promoting,
        "Promoting: kill -> Deployed (s)": after_promoting,
        "replica peak RSS, largest (MB)": max(replicas.peaks),
        "replica CPU time for the train, largest (s)": max(replicas.cpu),
    }


def main() -> int:
    sample: list[str] = []
    rounds = [one_round(sample) for _ in range(ROUNDS)]
    report(
        f"two replicas, the leader SIGKILLed in Verifying and in Promoting, {ROUNDS} rounds:",
        rounds,
    )
    print("/metrics of the leader while the train verified (a selection):")
    for line in sample:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
