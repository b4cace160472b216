"""Tried through kubectl as bob, alice and carol on the real cluster: an approval covers
one staging; the runbook's shadow rules hold without the webhook; separation of duties
covers every author, and under GitOps the commit's author."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator import Operator, Webhook, own_operator, window_closing_in
from tests.kube import eventually, kubectl

V1, V2 = "694a577a", "c80c6746"
ARGOCD = "system:serviceaccount:argocd:argocd-application-controller"
WEBHOOK_OFF = {"admission": {"enabled": False}}


@pytest.fixture
def hook() -> Iterator[Webhook]:
    receiver = Webhook()
    yield receiver
    receiver.close()


def apply_all(manifests: list[dict[str, Any]], user: str) -> None:
    """One `kubectl apply` of several documents: writes that follow each other at once."""
    kubectl("apply", "-f", "-", user=user, stdin=yaml.safe_dump_all(manifests))


def events(op: Operator, train: str, reason: str) -> str:
    return kubectl(
        "get",
        "events",
        "-n",
        op.ns,
        "--field-selector",
        f"involvedObject.name={train},reason={reason}",
        "-o",
        "jsonpath={.items[*].message}",
    ).stdout


def car(op: Operator, train: str, flavor: str) -> dict[str, Any]:
    cars = op.get("train", train)["status"]["cars"]
    return next(c for c in cars if c["flavor"] == flavor)


def annotate(op: Operator, train: str, value: str, user: str, check: bool = False) -> Any:
    return kubectl(
        "annotate", "--overwrite", "train", train, "-n", op.ns, value, user=user, check=check
    )


def known(op: Operator) -> set[str]:
    return {t["metadata"]["name"] for t in op.trains()}


# --- the runbook holds without the webhook ---------------------------------


@pytest.mark.parametrize("settings", [{}, WEBHOOK_OFF], ids=["webhook", "no-webhook"])
def test_two_quick_writes_do_not_put_an_untested_shadow_live(
    tmp_path: Path, hook: Webhook, settings: dict[str, Any]
) -> None:
    with own_operator(tmp_path, webhook=hook, **settings) as op:
        op.start()
        op.ship(op.flavor("ads", version=V1))
        before = known(op)
        mirrored = op.flavor(
            "ads", version=V1, shadow={"model": {"version": V2}, "mirrorPercent": 10}
        )
        live = op.flavor(
            "ads", version=V1, shadow={"model": {"version": V2}, "trafficPercent": 100}
        )
        apply_all([mirrored, live], user="bob")  # each write alone passes every admission check
        train = op.new_train(before)
        status = op.wait_phase(train, "Failed")["status"]
        failed = car(op, train, "ads")
        assert (failed["staging"], failed["production"]) == ("Failed", "Failed")
        assert failed["reason"] == "UntestedShadowTraffic"
        assert "route live traffic to it in a later change" in failed["message"]
        assert "production has not mirrored to" in failed["message"]
        assert any(h["reason"] == "UntestedShadowTraffic" for h in status["history"])
        assert status["reason"] == "RunbookRefused"
        assert "later change" in events(op, train, "UntestedShadowTraffic")
        eventually(
            lambda: any("UntestedShadowTraffic" in t and t.startswith("@") for t in hook.texts),
            what="the engineer to be told",
        )
        assert op.model_version("production", "ads") == V1, "production runs no shadow"
        assert len(op.deployments("production", "ads")) == 1


def test_a_mirror_over_the_cap_fails_its_car_and_the_rest_goes_on(tmp_path: Path) -> None:
    with own_operator(tmp_path, **WEBHOOK_OFF) as op:
        op.start()
        greedy = op.flavor("ads", shadow={"model": {"version": V2}, "mirrorPercent": 80})
        apply_all([greedy, op.flavor("feed")], user="bob")
        train = op.new_train()
        assert len(op.get("train", train)["spec"]["cars"]) == 2
        op.wait_phase(train, "AwaitingApproval")
        failed = car(op, train, "ads")
        assert failed["reason"] == "MirrorOverCap"
        assert "over the mirror cap of 50" in failed["message"]
        annotate(op, train, "adroit.dev/approved=true", "alice", check=True)
        op.wait_phase(train, "Deployed")
        assert car(op, train, "feed")["production"] == "Deployed"
        assert car(op, train, "ads")["production"] == "Failed"
        assert op.deployments("production", "ads") == []
        assert op.deployments("staging", "ads") == []
        assert len(op.deployments("production", "feed")) == 1
        assert known(op) == {train}, "the refused revision does not ride again by itself"


def test_a_shadow_without_a_router_fails_its_car(tmp_path: Path) -> None:
    with own_operator(tmp_path, traffic={"router": "none"}, **WEBHOOK_OFF) as op:
        op.start()
        kubectl(
            "apply",
            "-f",
            "-",
            user="bob",
            stdin=yaml.safe_dump(
                op.flavor("ads", shadow={"model": {"version": V2}, "mirrorPercent": 10})
            ),
        )
        train = op.new_train()
        op.wait_phase(train, "Failed")
        failed = car(op, train, "ads")
        assert failed["reason"] == "ShadowWithoutRouter"
        assert "shadows need a traffic router" in failed["message"]
        assert op.deployments("staging", "ads") == []


# --- an approval covers one staging ----------------------------------------


def test_an_approval_is_void_after_the_window_closes(tmp_path: Path, hook: Webhook) -> None:
    # The promotion cannot start before the window closes: the approved train waits, is sent
    # back to Queued at window close, and departs again the next time.
    with own_operator(
        tmp_path,
        webhook=hook,
        deployWindow=window_closing_in(30),
        timeouts={"promotionLeadTime": "2h"},
    ) as op:
        op.start()
        kubectl("apply", "-f", "-", user="bob", stdin=yaml.safe_dump(op.flavor("ads")))
        train = op.new_train()
        op.wait_phase(train, "AwaitingApproval")
        annotate(op, train, "adroit.dev/approved=true", "alice", check=True)
        eventually(
            lambda: op.get("train", train)["status"].get("reason") == "WaitingForPromotionWindow",
            what="the approved train to wait for the promotion window",
        )
        status = op.wait_phase(train, "Queued", timeout=60)["status"]
        reasons = [h["reason"] for h in status["history"]]
        assert reasons[-2:] == ["WindowClosed", "ApprovalVoided"]
        assert status.get("approval") is None
        assert "new approval is needed" in events(op, train, "ApprovalVoided")
        eventually(
            lambda: any("ApprovalVoided" in t and "@bob" in t for t in hook.texts),
            what="the engineer to be told",
        )

        # Rather than wait for tomorrow's window: an approver lets it go outside the window.
        annotate(op, train, "adroit.dev/override-window=true", "alice", check=True)
        op.wait_phase(train, "AwaitingApproval")
        eventually(
            lambda: op.get("train", train)["status"].get("reason") == "ApprovalVoided",
            what="the train to ask for a new approval",
        )
        status = op.get("train", train)["status"]
        assert "approve again" in status["message"].lower()
        approved = next(c for c in status["conditions"] if c["type"] == "Approved")
        assert (approved["status"], approved["reason"]) == ("False", "ApprovalVoided")
        assert op.get("train", train)["metadata"]["annotations"]["adroit.dev/approved"] == "true"
        assert op.phase(train) == "AwaitingApproval", "yesterday's approval does not promote"

        # A fresh approval is accepted: withdraw the old one, approve again.
        kubectl("annotate", "train", train, "-n", op.ns, "adroit.dev/approved-", user="carol")
        annotate(op, train, "adroit.dev/approved=true", "carol", check=True)
        status = op.wait_phase(train, "Deployed")["status"]
        assert status["approval"]["by"] == "carol"


# --- separation of duties over every author --------------------------------


def test_an_author_of_an_earlier_change_may_not_approve(tmp_path: Path) -> None:
    with own_operator(tmp_path) as op:
        op.start()
        op.ship(op.flavor("ads", version="v1"))
        before = known(op)
        kubectl("apply", "-f", "-", user="carol", stdin=yaml.safe_dump(op.flavor("ads", "v2")))
        first = op.new_train(before)
        kubectl("apply", "-f", "-", user="bob", stdin=yaml.safe_dump(op.flavor("ads", "v3")))
        annotate(op, first, "adroit.dev/abort=true", "alice", check=True)
        op.wait_phase(first, "Aborted")
        train = op.new_train(before | {first})
        spec = op.get("train", train)["spec"]
        assert spec["engineer"] == "bob"
        assert spec["cars"][0]["authors"] == ["carol", "bob"], "every author since production's"
        op.wait_phase(train, "AwaitingApproval")
        refused = annotate(op, train, "adroit.dev/approved=true", "carol")
        assert refused.returncode != 0
        assert "carol made the change train" in refused.stderr
        assert "separation of duties" in refused.stderr
        annotate(op, train, "adroit.dev/approved=true", "alice", check=True)
        assert op.wait_phase(train, "Deployed")["status"]["approval"]["by"] == "alice"


def test_a_trusted_writer_names_the_author_and_nobody_else_may(tmp_path: Path) -> None:
    with own_operator(tmp_path, approval={"trustedAuthors": [ARGOCD]}) as op:
        kubectl(
            "create",
            "rolebinding",
            "argocd",
            "-n",
            op.ns,
            "--clusterrole=adroit-developer",
            f"--user={ARGOCD}",
        )
        op.start()
        synced = op.flavor("ads")
        synced["metadata"]["annotations"] = {"adroit.dev/author": "carol"}
        kubectl("apply", "-f", "-", user=ARGOCD, stdin=yaml.safe_dump(synced))
        annotations = op.get("flavor", "ads")["metadata"]["annotations"]
        assert annotations["adroit.dev/changed-by"] == "carol", "the commit's author, not Argo CD"
        assert [a for _, a in json.loads(annotations["adroit.dev/authors"])] == ["carol"]
        train = op.new_train()
        assert op.get("train", train)["spec"]["cars"][0]["authors"] == ["carol"]
        op.wait_phase(train, "AwaitingApproval")
        assert annotate(op, train, "adroit.dev/approved=true", "carol").returncode != 0

        refused = kubectl(
            "annotate",
            "--overwrite",
            "flavor",
            "ads",
            "-n",
            op.ns,
            "adroit.dev/author=alice",
            user="bob",
            check=False,
        )
        assert refused.returncode != 0
        assert "approval.trustedAuthors" in refused.stderr
        assert "bob is not one" in refused.stderr
        claimed = op.flavor("ads", version=V2)
        claimed["metadata"]["annotations"] = {"adroit.dev/author": "alice"}
        refused = kubectl(
            "apply", "-f", "-", user="bob", stdin=yaml.safe_dump(claimed), check=False
        )
        assert refused.returncode != 0
        assert "bob is not one" in refused.stderr
        assert op.get("flavor", "ads")["metadata"]["annotations"]["adroit.dev/author"] == "carol"
