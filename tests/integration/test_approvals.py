"""Approvals that can be trusted: who may approve, separation of duties, signed records."""

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.operator import Operator, own_operator
from tests.kube import FULL_RIDE, apply, eventually, kubectl


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Operator]:
    with own_operator(tmp_path) as running:
        yield running


def waiting_train(op: Operator, flavor: str = "ads", user: str = "bob") -> str:
    apply(op.flavor(flavor, version="v1"), user=user)
    train = op.new_train()
    op.wait_phase(train, "AwaitingApproval")
    return train


def annotate(op: Operator, train: str, value: str, user: str, check: bool = False):
    return kubectl(
        "annotate", "--overwrite", "train", train, "-n", op.ns, value, user=user, check=check
    )


def test_the_webhook_stamps_who_changed_a_flavor(op: Operator) -> None:
    op.start()
    apply(op.flavor("ads", version="v1"), user="bob")
    author = lambda: op.get("flavor", "ads")["metadata"]["annotations"].get("adroit.dev/changed-by")  # noqa: E731
    assert author() == "bob"
    kubectl("label", "flavor", "ads", "-n", op.ns, "team=ads", user="alice")
    assert author() == "bob", "a label is not a change of the model"
    kubectl(
        "annotate",
        "--overwrite",
        "flavor",
        "ads",
        "-n",
        op.ns,
        "adroit.dev/changed-by=carol",
        user="alice",
    )
    assert author() == "bob", "nobody can claim another's change"
    apply(op.flavor("ads", version="v2"), user="alice")
    assert author() == "alice"
    train = op.new_train()
    assert op.get("train", train)["spec"]["engineer"] == "bob", "the first change's author drives"


def test_a_developer_may_not_approve(op: Operator) -> None:
    op.start()
    train = waiting_train(op)
    refused = annotate(op, train, "adroit.dev/approved=true", "bob")
    assert refused.returncode != 0
    assert 'User "bob" cannot patch resource "trains"' in refused.stderr
    # Someone allowed to annotate trains but not to approve them: the webhook's SubjectAccessReview.
    kubectl(
        "create",
        "role",
        "annotator",
        "-n",
        op.ns,
        "--verb=get,patch",
        "--resource=trains.adroit.dev",
    )
    kubectl("create", "rolebinding", "annotator", "-n", op.ns, "--role=annotator", "--user=dave")
    refused = annotate(op, train, "adroit.dev/approved=true", "dave")
    assert refused.returncode != 0
    assert "dave may not approve trains in this namespace" in refused.stderr
    assert "ClusterRole adroit-approver" in refused.stderr
    assert op.phase(train) == "AwaitingApproval"


def test_an_approver_approves_and_is_on_record(op: Operator) -> None:
    op.start()
    train = waiting_train(op)
    annotate(op, train, "adroit.dev/approved=true", "alice", check=True)
    status = op.wait_phase(train, "Deployed")["status"]
    assert [h["phase"] for h in status["history"]] == FULL_RIDE
    assert status["approval"]["by"] == "alice"
    assert "adroit:approvers" in status["approval"]["groups"]
    promoting = next(h for h in status["history"] if h["phase"] == "Promoting")
    assert promoting["by"] == "alice"
    assert "approved by alice" in promoting["message"]
    events = kubectl(
        "get",
        "events",
        "-n",
        op.ns,
        "--field-selector",
        f"involvedObject.name={train},reason=Approved",
        "-o",
        "jsonpath={.items[*].message}",
    ).stdout
    assert "approved by alice" in events


def test_nobody_approves_their_own_change_but_a_second_approver_can(op: Operator) -> None:
    op.start()
    train = waiting_train(op, user="alice")  # alice made the change: she drives the train
    refused = annotate(op, train, "adroit.dev/approved=true", "alice")
    assert refused.returncode != 0
    assert "alice drives train" in refused.stderr
    assert "separation of duties" in refused.stderr
    annotate(op, train, "adroit.dev/approved=true", "carol", check=True)
    assert op.wait_phase(train, "Deployed")["status"]["approval"]["by"] == "carol"


def test_a_forged_record_does_not_move_the_train(op: Operator) -> None:
    op.start()
    train = waiting_train(op)
    # Even an admin cannot write the record: the webhook keeps records its own.
    forged = "eyJ1c2VyIjoiYWRtaW4ifQ.AAAA"
    kubectl("annotate", "train", train, "-n", op.ns, f"adroit.dev/approved-record={forged}")
    assert "adroit.dev/approved-record" not in op.get("train", train)["metadata"]["annotations"]

    # An approval written while the webhook was out of the way is not honoured.
    op.stop()
    kubectl("delete", "mutatingwebhookconfiguration", f"adroit-{op.ns}")
    kubectl(
        "annotate",
        "train",
        train,
        "-n",
        op.ns,
        "adroit.dev/approved=true",
        f"adroit.dev/approved-record={forged}",
    )
    op.start()
    status = eventually(
        lambda: (s := op.get("train", train)["status"])["reason"] == "ApprovalNotVerified" and s,
        what="the train to say the approval is not verified",
    )
    assert status["phase"] == "AwaitingApproval"
    assert "written past the admission webhook" in status["message"]
    approved = {c["type"]: c for c in status["conditions"]}["Approved"]
    assert (approved["status"], approved["reason"]) == ("False", "ApprovalNotVerified")
    time.sleep(3)
    assert op.phase(train) == "AwaitingApproval"
    assert op.deployments("production", "ads") == []

    # Approving again through the webhook works.
    annotate(op, train, "adroit.dev/approved-", "alice", check=True)
    annotate(op, train, "adroit.dev/approved=true", "alice", check=True)
    op.wait_phase(train, "Deployed")


def test_with_the_operator_down_an_approval_is_refused(op: Operator) -> None:
    op.start()
    train = waiting_train(op)
    op.stop()
    refused = annotate(op, train, "adroit.dev/approved=true", "alice")
    assert refused.returncode != 0
    assert f'failed calling webhook "trains.{op.ns}.adroit.dev"' in refused.stderr
    # Other writes to the train are not blocked by the outage.
    kubectl("label", "train", train, "-n", op.ns, "ticket=OPS-1", user="alice")


@pytest.mark.parametrize("phase_at_approval", ["Staging", "Deployed"])
def test_approvals_out_of_turn_are_refused(op: Operator, phase_at_approval: str) -> None:
    op.settings["timeouts"]["verifyFor"] = "20s" if phase_at_approval == "Staging" else "1s"
    op.start()
    apply(op.flavor("ads", version="v1"), user="bob")
    train = op.new_train()
    if phase_at_approval == "Deployed":
        op.wait_phase(train, "AwaitingApproval")
        annotate(op, train, "adroit.dev/approved=true", "alice", check=True)
        op.wait_phase(train, "Deployed")
        annotate(op, train, "adroit.dev/approved-", "alice", check=True)
        refused = annotate(op, train, "adroit.dev/approved=true", "carol")
        assert "already ended (Deployed): there is nothing left to approve" in refused.stderr
    else:
        op.wait_phase(train, "Verifying")
        refused = annotate(op, train, "adroit.dev/approved=true", "alice")
        assert "not AwaitingApproval: approve it once it has been verified" in refused.stderr
    assert refused.returncode != 0


def test_malformed_annotations_are_refused(op: Operator) -> None:
    op.start()
    train = waiting_train(op)
    refused = annotate(op, train, "adroit.dev/approved=maybe", "alice")
    assert refused.returncode != 0
    assert 'adroit.dev/approved must be "true" (got "maybe")' in refused.stderr
    refused = annotate(op, train, "adroit.dev/override-window=yes", "alice")
    assert 'adroit.dev/override-window must be "true"' in refused.stderr
    assert op.phase(train) == "AwaitingApproval"


def test_the_operator_runs_a_train_as_its_own_service_account(op: Operator, tmp_path: Path) -> None:
    rbac = op.rbac()
    for wildcard in ("'*'", '"*"', "[*]"):
        assert wildcard not in rbac, "no wildcards"
    kubectl("apply", "-f", "-", stdin=rbac)
    account = f"{op.ns}-operator"
    token = kubectl("create", "token", account, "-n", op.ns, "--duration=1h").stdout.strip()
    config = yaml.safe_load(kubectl("config", "view", "--raw", "--minify").stdout)
    config["users"] = [{"name": account, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = account
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    who = kubectl("--kubeconfig", str(kubeconfig), "auth", "whoami", "-o", "json").stdout
    assert (
        json.loads(who)["status"]["userInfo"]["username"]
        == f"system:serviceaccount:{op.ns}:{account}"
    )

    op.spawn(kubeconfig=kubeconfig)
    train = waiting_train(op)
    annotate(op, train, "adroit.dev/approved=true", "alice", check=True)
    status = op.wait_phase(train, "Deployed")["status"]
    assert status["approval"]["by"] == "alice"
    assert len(op.deployments("production", "ads")) == 1
    secret = op.get("secret", "adroit-approval-key")
    assert base64.b64decode(secret["data"]["signing-key"]), "the key lives in the Secret"
    assert "Forbidden" not in op.log.read_text()
    assert "forbidden" not in op.log.read_text()
