"""Shadows on the real cluster, with each router: mirror, live share, cutover, refusals, quota."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.operator import Operator, own_operator
from tests.kube import apply, eventually, kubectl

V1, V2 = "694a577a", "c80c6746"


def route(op: Operator, router: str) -> dict[str, Any]:
    kind = "httproute" if router == "gateway" else "virtualservice"
    return op.get(kind, "ads", op.production)


def weights(op: Operator, router: str) -> list[int]:
    spec = route(op, router)["spec"]
    if router == "gateway":
        return [b["weight"] for b in spec["rules"][0]["backendRefs"]]
    return [r["weight"] for r in spec["http"][0]["route"]]


def split(op: Operator) -> dict[str, Any]:
    return eventually(
        lambda: op.get("flavor", "ads")["status"]["production"].get("traffic"),
        what="the traffic split in status",
    )


def roles(op: Operator) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["adroit.dev/role"]: d for d in op.deployments("production", "ads")
    }


def pods(op: Operator, deployment: str) -> set[str]:
    out = kubectl(
        "get",
        "pods",
        "-n",
        op.production,
        "-l",
        f"adroit.dev/deployment={deployment}",
        "-o",
        "jsonpath={.items[*].metadata.uid}",
    ).stdout
    return set(out.split())


@pytest.fixture(params=["gateway", "istio"])
def router(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def op(tmp_path: Path, router: str) -> Iterator[Operator]:
    traffic = {"router": router, "gateway": {"name": "ml-gateway", "namespace": "gateway-system"}}
    with own_operator(tmp_path, traffic=traffic, timeouts={"verifyFor": "2s"}) as running:
        yield running


def test_mirror_then_live_share_then_cutover(op: Operator, router: str) -> None:
    op.start()
    op.ship(op.flavor("ads", version=V1))
    assert weights(op, router) == [100]

    op.ship(op.flavor("ads", version=V1, shadow={"model": {"version": V2}, "mirrorPercent": 10}))
    deployments = roles(op)
    assert set(deployments) == {"primary", "shadow"}
    shadow = deployments["shadow"]
    assert shadow["spec"]["replicas"] == 3
    env = {
        e["name"]: e["value"] for e in shadow["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODEL_VERSION"] == V2
    assert weights(op, router) == [100, 0]
    body = route(op, router)["spec"]
    if router == "gateway":
        mirror = body["rules"][0]["filters"][0]["requestMirror"]
        assert (mirror["percent"], mirror["backendRef"]["name"]) == (10, shadow["metadata"]["name"])
    else:
        assert body["http"][0]["mirrorPercentage"] == {"value": 10}
        assert body["http"][0]["mirror"]["host"].startswith(shadow["metadata"]["name"] + ".")
    assert split(op) == {
        "primaryPercent": 100,
        "shadowPercent": 0,
        "mirrorPercent": 10,
        "shadowModelVersion": V2,
        "shadowIsPrimary": False,
    }
    assert op.deployments("staging", "ads")[0]["metadata"]["labels"]["adroit.dev/role"] == "primary"
    assert len(op.deployments("staging", "ads")) == 1, "no shadow in staging"

    op.ship(
        op.flavor(
            "ads",
            version=V1,
            shadow={"model": {"version": V2}, "mirrorPercent": 0, "trafficPercent": 30},
        )
    )
    assert weights(op, router) == [70, 30]
    assert (split(op)["primaryPercent"], split(op)["shadowPercent"]) == (70, 30)

    op.ship(op.flavor("ads", version=V1, shadow={"model": {"version": V2}, "trafficPercent": 100}))
    assert split(op)["shadowIsPrimary"] is True
    pods_before = pods(op, shadow["metadata"]["name"])
    assert len(pods_before) == 3

    op.ship(
        op.flavor("ads", version=V2)
    )  # make the shadow's version the primary's, and drop the shadow
    after = roles(op)
    assert set(after) == {"primary"}
    promoted = after["primary"]["metadata"]
    assert (promoted["uid"], promoted["name"]) == (
        shadow["metadata"]["uid"],
        shadow["metadata"]["name"],
    )
    assert pods(op, promoted["name"]) == pods_before, "nothing restarted"
    assert weights(op, router) == [100]
    assert split(op)["primaryPercent"] == 100


def test_runbook_refusals_through_kubectl(op: Operator) -> None:
    op.start()
    refused = apply(
        op.flavor("ads", shadow={"model": {"version": V2}, "mirrorPercent": 60}),
        user="bob",
        check=False,
    )
    assert refused.returncode != 0
    assert "mirrorPercent 60 is over the mirror cap of 50" in refused.stderr
    refused = apply(
        op.flavor("ads", shadow={"model": {"version": V2}, "trafficPercent": 20}),
        user="bob",
        check=False,
    )
    assert "a new or changed shadow model must start with trafficPercent: 0" in refused.stderr
    refused = apply(
        op.flavor("ads", stagingOnly=True, shadow={"model": {"version": V2}}),
        user="bob",
        check=False,
    )
    assert "a staging-only flavor has no shadow" in refused.stderr


def test_no_router_no_shadows(tmp_path: Path) -> None:
    with own_operator(tmp_path, traffic={"router": "none"}) as op:
        op.start()
        refused = apply(
            op.flavor("ads", shadow={"model": {"version": V2}, "mirrorPercent": 5}),
            user="bob",
            check=False,
        )
        assert refused.returncode != 0
        assert "shadows need a traffic router" in refused.stderr


def test_a_shadow_that_does_not_fit_the_quota_waits(tmp_path: Path) -> None:
    with own_operator(tmp_path, timeouts={"verifyFor": "2s"}) as op:
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "memory", "namespace": op.production},
            "spec": {"hard": {"requests.memory": "6000Mi"}},
        }
        kubectl("apply", "-f", "-", stdin=json.dumps(quota))
        op.start()
        first = op.ship(op.flavor("ads", version=V1))  # 3 x 1500 MiB fits
        apply(op.flavor("ads", shadow={"model": {"version": V2}, "mirrorPercent": 10}), user="bob")
        train = op.new_train({first})
        op.wait_phase(train, "AwaitingApproval")
        kubectl("annotate", "train", train, "-n", op.ns, "adroit.dev/approved=true", user="alice")
        status = eventually(
            lambda: (s := op.get("train", train)["status"])["reason"] == "InsufficientQuota" and s,
            what="the train to wait for quota",
        )
        assert "needs 4500 MiB (ads shadow 4500 MiB)" in status["message"]
        assert len(op.deployments("production", "ads")) == 1, "no half rollout"
        # Not a whole number of bytes: the API server stores it as 12562779340800m.
        quota["spec"]["hard"]["requests.memory"] = "11.7Gi"
        kubectl("apply", "-f", "-", stdin=json.dumps(quota))
        op.wait_phase(train, "Deployed")
        assert len(op.deployments("production", "ads")) == 2
