"""Two replicas, one leader: only the Lease's holder reconciles, every replica serves the
webhook, and when the leader dies the other takes over and the train carries on."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adroit.api.settings import LeaderElection
from adroit.kube.cluster import connect
from adroit.kube.leader import Elector
from tests.integration.operator import Operator, own_operator
from tests.kube import FULL_RIDE, NAMESPACE, apply, eventually, kubectl, unique

LEASE = "adroit-leader"
# Shorter than the defaults (15 s, 10 s, 2 s), so that a take-over takes seconds, not 15.
LEASE_DURATION = 6
ELECTION = {"leaseDuration": f"{LEASE_DURATION}s", "renewDeadline": "4s", "retryPeriod": "1s"}


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Operator]:
    # verifyFor: long enough for a take-over to happen while the train verifies.
    with own_operator(tmp_path, timeouts={"verifyFor": "20s"}, leaderElection=ELECTION) as running:
        yield running


def holder(op: Operator) -> str:
    out = kubectl("get", "lease", LEASE, "-n", op.ns, "-o", "json", check=False).stdout
    identity = (json.loads(out or "{}").get("spec") or {}).get("holderIdentity") or ""
    return str(identity).split("_")[0]  # the replica's name (POD_NAME), without the suffix


def take_over(op: Operator, leader: str) -> tuple[str, float]:
    """SIGKILL the leader; the other replica's name and how long it took to lead."""
    killed = time.monotonic()
    op.kill(leader)
    successor = eventually(
        lambda: (h := holder(op)) not in ("", leader) and h,
        timeout=30,
        what="the other replica to take the Lease",
    )
    return str(successor), time.monotonic() - killed


def test_the_other_replica_takes_over_and_the_train_carries_on(op: Operator) -> None:
    pool = f"leader-{int(time.time())}"
    label = f"adroit-test/{pool}=yes"
    kubectl("label", "node", "kwok-node-0", label)
    try:
        op.spawn(replica="replica-a")
        op.spawn(replica="replica-b")
        leader = str(eventually(lambda: holder(op), what="a leader"))
        assert leader in ("replica-a", "replica-b")

        apply(
            op.flavor("ads", version="v1", nodeSelector={f"adroit-test/{pool}": "yes"}), user="bob"
        )
        train = op.new_train()
        op.wait_phase(train, "Verifying")
        leader, took = take_over(op, leader)
        assert took < 3 * LEASE_DURATION, f"took {took:.0f} s to take over in Verifying"
        op.wait_phase(train, "AwaitingApproval", timeout=90)

        # Without the label, production pods cannot start: the train holds in Promoting.
        kubectl("label", "node", "kwok-node-0", f"adroit-test/{pool}-")
        kubectl("annotate", "train", train, "-n", op.ns, "adroit.dev/approved=true", user="alice")
        op.wait_phase(train, "Promoting")
        eventually(lambda: op.deployments("production", "ads"), what="a production Deployment")
        first = op.deployments("production", "ads")[0]["metadata"]
        op.spawn(replica="replica-c")  # a replacement pod, standing by
        leader, took = take_over(op, leader)
        assert took < 3 * LEASE_DURATION, f"took {took:.0f} s to take over in Promoting"
        kubectl("label", "node", "kwok-node-0", label)
        status = op.wait_phase(train, "Deployed", timeout=90)["status"]

        assert [t["metadata"]["name"] for t in op.trains()] == [train], "no duplicate train"
        assert [h["phase"] for h in status["history"]] == FULL_RIDE
        assert status["approval"]["by"] == "alice", "the approval was kept"
        production = op.deployments("production", "ads")
        assert [d["metadata"]["uid"] for d in production] == [first["uid"]], (
            "one production rollout"
        )
        assert production[0]["metadata"]["generation"] == 1
    finally:
        kubectl("label", "node", "kwok-node-0", f"adroit-test/{pool}-", check=False)


def test_a_replica_that_stops_hands_the_lease_over_at_once(op: Operator) -> None:
    op.start()  # in-process; stopping it runs its cleanup
    eventually(lambda: holder(op), what="the in-process operator to lead")
    op.stop()
    assert holder(op) == "", "released on the way out: the next leader need not wait for it"


def test_a_replica_that_stops_leading_stops_its_work_first() -> None:
    """Cancelled while it leads (the operator stops, or its settings change and the
    controller restarts), the elector stops the controller before it hands the Lease
    over: no controller of the old one goes on reconciling without it."""
    lease = unique("lease")
    config = LeaderElection.model_validate({"leaseName": lease})
    ended: list[str] = []

    async def scenario() -> list[str]:
        api = await connect()
        elector = Elector(api, NAMESPACE, config)
        started = asyncio.Event()

        async def work() -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                ended.append("cancelled")
                raise

        leading = asyncio.create_task(elector.run(work))
        try:
            await asyncio.wait_for(started.wait(), timeout=30)
        finally:
            leading.cancel()
            await asyncio.gather(leading, return_exceptions=True)
            await api.close()
        return list(ended)  # before the end of asyncio.run cancels whatever is left

    try:
        assert asyncio.run(scenario()) == ["cancelled"], (
            "the work went on after the elector was stopped"
        )
        holder = kubectl("get", "lease", lease, "-n", NAMESPACE, "-o", "json").stdout
        assert json.loads(holder)["spec"]["holderIdentity"] == "", "the Lease was handed over"
    finally:
        kubectl("delete", "lease", lease, "-n", NAMESPACE, "--ignore-not-found", check=False)
