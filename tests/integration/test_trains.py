"""Release trains on the real cluster, driven as a user would: kubectl apply, annotate, wait."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.operator import (
    IMAGE,
    Operator,
    Webhook,
    frozen_today,
    own_operator,
    window_closing_in,
)
from tests.kube import FULL_RIDE, apply, eventually, kubectl


@pytest.fixture
def op(tmp_path: Path, webhook: Webhook) -> Iterator[Operator]:
    with own_operator(tmp_path, webhook=webhook) as running:
        yield running


def test_readme_flow_from_apply_to_deployed(op: Operator, webhook: Webhook) -> None:
    op.start()
    started = time.monotonic()
    apply(op.flavor("ads-pctr-v5", version="694a577a"), user="bob")
    train = op.new_train()
    kubectl(
        "wait",
        "-n",
        op.ns,
        f"train/{train}",
        "--for=jsonpath={.status.phase}=AwaitingApproval",
        "--timeout=90s",
    )
    staging = op.deployments("staging", "ads-pctr-v5")
    assert len(staging) == 1
    assert staging[0]["status"]["availableReplicas"] == 1
    assert op.deployments("production", "ads-pctr-v5") == [], (
        "nothing in production before approval"
    )
    engineer = op.get("train", train)["spec"]["engineer"]
    told = eventually(
        lambda: [t for t in webhook.texts if "AwaitingApproval" in t], what="a notice"
    )
    assert told[0].startswith(f"@{engineer}:")
    assert "adroit.dev/approved=true" in told[0]

    op.approve(train)
    kubectl("wait", "-n", op.ns, f"train/{train}", "--for=condition=Deployed", "--timeout=90s")
    print(f"\napply to Deployed: {time.monotonic() - started:.1f}s")

    prod = op.deployments("production", "ads-pctr-v5")
    assert len(prod) == 1
    deployment = prod[0]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["status"]["availableReplicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"]["memory"] == "1500Mi"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_VERSION"] == "694a577a"
    assert env["ADROIT_FLAVOR"] == "ads-pctr-v5"
    assert deployment["metadata"]["labels"]["adroit.dev/role"] == "primary"
    services = kubectl("get", "services", "-n", op.production, "-o", "name").stdout.split()
    assert "service/ads-pctr-v5" in services
    assert len(services) == 2
    pdb = op.get("poddisruptionbudget", "ads-pctr-v5", op.production)
    assert pdb["spec"]["maxUnavailable"] == 1

    status = op.get("train", train)["status"]
    assert [h["phase"] for h in status["history"]] == FULL_RIDE
    assert status["cars"] == [
        {"flavor": "ads-pctr-v5", "staging": "Verified", "production": "Deployed"}
    ]
    # A Flavor's status is its own write, a moment after the train's.
    kubectl("wait", "-n", op.ns, "flavor/ads-pctr-v5", "--for=condition=Ready", "--timeout=10s")
    flavor = op.get("flavor", "ads-pctr-v5")["status"]
    assert flavor["production"]["modelVersion"] == "694a577a"
    assert flavor["production"]["train"] == train
    conditions = {c["type"]: c["status"] for c in flavor["conditions"]}
    assert conditions == {"Ready": "True", "InProduction": "True", "PendingChanges": "False"}

    table = kubectl("get", "trains", "-n", op.ns).stdout
    assert "Deployed" in table
    assert engineer in table
    events = op.events(train, "reason")
    assert {"Created", "Departed", "StagingAvailable", "Verified", "Approved", "Promoted"} <= set(
        events.split()
    )
    eventually(lambda: any("Deployed" in t for t in webhook.texts), what="the Deployed notice")


def test_one_train_on_the_tracks_later_changes_board_the_next(op: Operator) -> None:
    op.start()
    apply(op.flavor("first", version="a1"), user="bob")
    first = op.new_train()
    op.wait_phase(first, "AwaitingApproval")
    apply(op.flavor("second", version="b1"), user="bob")
    time.sleep(4)
    assert [t["metadata"]["name"] for t in op.trains()] == [first], "no second train on the tracks"
    assert op.deployments("staging", "second") == [], "the waiting change leaves staging alone"
    pending = {c["type"]: c for c in op.get("flavor", "second")["status"]["conditions"]}
    assert pending["PendingChanges"]["reason"] == "AwaitingTrain"

    op.approve(first)
    op.wait_phase(first, "Deployed")
    second = op.new_train({first})
    assert [c["flavor"] for c in op.get("train", second)["spec"]["cars"]] == ["second"]
    op.wait_phase(second, "AwaitingApproval")


def test_broken_staging_is_reverted_and_production_untouched(tmp_path: Path) -> None:
    with own_operator(tmp_path, timeouts={"stagingTimeout": "15s"}) as op:
        op.start()
        first = op.ship(op.flavor("ads", version="v1"))
        production_uid = op.deployments("production", "ads")[0]["metadata"]["uid"]

        apply(op.flavor("ads", version="v2", nodeSelector={"pool": "nowhere"}), user="bob")
        second = op.new_train({first})
        status = op.wait_phase(second, "RolledBack", timeout=60)["status"]
        assert status["reason"] == "StagingFailed"
        assert "car ads in staging: not Available within 15s" in status["message"]
        assert "cannot be scheduled" in status["message"]
        assert status["cars"][0]["staging"] == "Failed"
        eventually(lambda: op.model_version("staging", "ads") == "v1", what="staging back at v1")
        prod = op.deployments("production", "ads")
        assert [d["metadata"]["uid"] for d in prod] == [production_uid], "production untouched"


def test_staging_that_breaks_during_verification_is_rolled_back(tmp_path: Path) -> None:
    pool = f"verify-{int(time.time())}"
    kubectl("label", "node", "kwok-node-0", f"adroit-test/{pool}=yes")
    try:
        with own_operator(tmp_path, timeouts={"verifyFor": "60s"}) as op:
            op.start()
            apply(
                op.flavor("fragile", version="f1", nodeSelector={f"adroit-test/{pool}": "yes"}),
                user="bob",
            )
            train = op.new_train()
            op.wait_phase(train, "Verifying")
            kubectl("label", "node", "kwok-node-0", f"adroit-test/{pool}-")
            kubectl(
                "delete",
                "pods",
                "-n",
                op.staging,
                "-l",
                "adroit.dev/flavor=fragile",
                "--wait=false",
            )
            status = op.wait_phase(train, "RolledBack", timeout=30)["status"]
            assert status["reason"] == "BrokeDuringVerification"
            assert (
                "car fragile in staging became unavailable during verification" in status["message"]
            )
            eventually(lambda: op.deployments("staging", "fragile") == [], what="staging emptied")
    finally:
        kubectl("label", "node", "kwok-node-0", f"adroit-test/{pool}-", check=False)


def test_staging_only_flavor_is_verified_and_skipped_in_production(op: Operator) -> None:
    op.start()
    apply(op.flavor("experiment", version="e1", stagingOnly=True), user="bob")
    train = op.new_train()
    status = op.wait_phase(train, "Deployed")["status"]
    assert status["reason"] == "VerifiedStagingOnly"
    assert "approval" not in status
    car = status["cars"][0]
    assert (car["production"], car["reason"]) == ("Skipped", "StagingOnly")
    assert op.model_version("staging", "experiment") == "e1"
    assert op.deployments("production", "experiment") == []


def test_runtime_release_rides_without_approval(op: Operator) -> None:
    op.start()
    first = op.ship(op.flavor("ads", version="v1"))

    op.stop()
    op.settings["runtimes"]["scikit-learn-2022-10"] = IMAGE + "-patch1"
    op.start()
    release = op.new_train({first})
    assert op.get("train", release)["spec"]["runtimeRelease"] is True
    status = op.wait_phase(release, "Deployed")["status"]
    assert "approval" not in status
    assert [h["reason"] for h in status["history"]][-2:] == ["ContinuousDeployment", "Promoted"]
    images = [
        d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in op.deployments("production", "ads")
    ]
    assert images == [IMAGE + "-patch1"]


def test_trains_wait_for_the_deploy_window_unless_overridden(tmp_path: Path) -> None:
    with own_operator(tmp_path, deployWindow=frozen_today()) as op:
        op.start()
        apply(op.flavor("ads", version="v1"), user="bob")
        train = op.new_train()
        status = eventually(
            lambda: (
                op.get("train", train).get("status", {}).get("reason") == "OutsideDeployWindow"
                and op.get("train", train)["status"]
            ),
            what="a reason",
        )
        assert status["phase"] == "Queued"
        assert "deploy freeze: test freeze" in status["message"]
        assert status["windowOpensAt"]
        assert op.deployments("staging", "ads") == []

        kubectl(
            "annotate", "train", train, "-n", op.ns, "adroit.dev/override-window=true", user="alice"
        )
        op.wait_phase(train, "AwaitingApproval")


def test_at_window_close_the_train_goes_back_to_the_queue(tmp_path: Path) -> None:
    window = window_closing_in(12)
    with own_operator(tmp_path, deployWindow=window, timeouts={"verifyFor": "120s"}) as op:
        op.start()
        apply(op.flavor("late", version="l1"), user="bob")
        train = op.new_train()
        op.wait_phase(train, "Verifying")
        status = eventually(
            lambda: (s := op.get("train", train)["status"])["phase"] == "Queued" and s,
            timeout=40,
            what="the train back in the queue",
        )
        assert status["history"][-1]["reason"] == "WindowClosed"
        eventually(lambda: op.deployments("staging", "late") == [], what="staging emptied")


def test_abort_reverts_staging(op: Operator) -> None:
    op.start()
    apply(op.flavor("ads", version="v1"), user="bob")
    train = op.new_train()
    op.wait_phase(train, "AwaitingApproval")
    kubectl("annotate", "train", train, "-n", op.ns, "adroit.dev/abort=true", user="alice")
    status = op.wait_phase(train, "Aborted")["status"]
    assert status["history"][-1]["reason"] == "AbortRequested"
    eventually(lambda: op.deployments("staging", "ads") == [], what="staging emptied")
    assert op.deployments("production", "ads") == []


def test_deleting_a_flavor_takes_it_out_of_production_through_a_train(op: Operator) -> None:
    op.start()
    first = op.ship(op.flavor("retired", version="r1"))

    kubectl("delete", "flavor", "retired", "-n", op.ns, "--wait=false", user="bob")
    eventually(
        lambda: op.deployments("staging", "retired") == [], timeout=10, what="staging emptied"
    )
    removal = op.new_train({first})
    car = op.get("train", removal)["spec"]["cars"][0]
    assert car == {"flavor": "retired", "remove": True, "author": "bob"}
    op.wait_phase(removal, "AwaitingApproval")
    assert op.get("flavor", "retired")["metadata"]["deletionTimestamp"], "held by the finalizer"
    assert len(op.deployments("production", "retired")) == 1

    op.approve(removal)
    op.wait_phase(removal, "Deployed")
    eventually(
        lambda: kubectl("get", "flavor", "retired", "-n", op.ns, check=False).returncode != 0,
        what="the flavor to be gone",
    )
    assert op.deployments("production", "retired") == []
