"""The control plane goes away under a train and comes back: kube-apiserver stopped and
started again, and in a second test etcd. The operator recovers by itself within 30 s of
the API server's return, and nothing is lost or done twice. Local cluster only: the test
stops and starts the processes of hack/cluster/up.sh, after every other test (the
`outage` marker; tests/integration/conftest.py orders them last)."""

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.operator import own_operator
from tests.kube import FULL_RIDE, REPO, apply, eventually, kubectl

CLUSTER = Path(os.environ.get("ADROIT_CLUSTER_DIR") or REPO / ".cluster")
OUTAGE = 12.0  # s: longer than the leader's renew deadline (10 s) and than verifyFor


pytestmark = pytest.mark.outage


@pytest.fixture(autouse=True)
def _local_cluster() -> None:
    if subprocess.run([REPO / "hack/cluster/is-local.sh"], capture_output=True).returncode:
        pytest.skip("stops the local cluster's processes: runs against hack/cluster only")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@contextmanager
def stopped(component: str) -> Iterator[None]:
    """Stop one component of the local cluster; start it again, as it was, on the way out."""
    pidfile = CLUSTER / "pids" / f"{component}.pid"
    pid = int(pidfile.read_text())
    command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    env = dict(e.decode().split("=", 1) for e in environ if b"=" in e)
    cwd = os.readlink(f"/proc/{pid}/cwd")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    try:
        yield
    finally:
        with (CLUSTER / "logs" / f"{component}.log").open("ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        pidfile.write_text(str(process.pid))
        eventually(
            lambda: kubectl("get", "--raw", "/readyz", check=False).returncode == 0,
            timeout=90,
            what=f"the API server to be ready after {component} came back",
        )


def _cluster_works_again() -> None:
    """The cluster's own controllers (Deployments, the scheduler, kwok's fake kubelets) take
    their own time to watch again: wait until a plain Deployment becomes Available, so that
    what follows measures the operator, not them."""
    name = f"outage-probe-{int(time.time())}"
    kubectl("create", "deployment", name, "-n", "default", "--image=registry.local/probe:1")
    try:
        eventually(
            lambda: (
                kubectl(
                    "get",
                    "deployment",
                    name,
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={.status.availableReplicas}",
                    check=False,
                ).stdout
                == "1"
            ),
            timeout=180,
            what="the cluster's controllers to run a plain Deployment again",
        )
    finally:
        kubectl("delete", "deployment", name, "-n", "default", "--wait=false", check=False)


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_a_train_rides_out_a_control_plane_outage(tmp_path: Path, component: str) -> None:
    with own_operator(tmp_path, timeouts={"verifyFor": "5s"}) as op:
        op.start()
        apply(op.flavor("ads", version="v1"), user="bob")
        train = op.new_train()
        op.wait_phase(train, "Verifying")
        with stopped(component):
            time.sleep(OUTAGE)
        back = time.monotonic()
        op.wait_phase(train, "AwaitingApproval", timeout=60)
        recovered = time.monotonic() - back
        logging.getLogger(__name__).warning(
            "%s: the train moved on %.1f s after the API server's return", component, recovered
        )
        assert recovered < 30
        _cluster_works_again()
        op.approve_once_served(train)
        status = op.wait_phase(train, "Deployed")["status"]
        assert [t["metadata"]["name"] for t in op.trains()] == [train], "no duplicate train"
        assert [h["phase"] for h in status["history"]] == FULL_RIDE, "nothing done twice"
        production = op.deployments("production", "ads")
        assert len(production) == 1
        assert production[0]["metadata"]["generation"] == 1, "one production rollout"
