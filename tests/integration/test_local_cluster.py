"""The ground everything stands on: workloads run, roles hold, kubectl explains."""

import pytest

from tests.kube import NAMESPACE, apply, delete, flavor, kubectl, unique


def test_a_deployment_in_staging_becomes_available() -> None:
    name = unique("smoke")
    kubectl(
        "-n",
        "adroit-staging",
        "create",
        "deployment",
        name,
        "--image=registry.local/smoke:1",
        "--replicas=3",
    )
    try:
        kubectl(
            "-n",
            "adroit-staging",
            "wait",
            "--for=condition=Available",
            f"deployment/{name}",
            "--timeout=90s",
        )
        ready = kubectl(
            "-n",
            "adroit-staging",
            "get",
            "deployment",
            name,
            "-o",
            "jsonpath={.status.readyReplicas}",
        ).stdout
        assert ready == "3"
    finally:
        delete("deployment", name, namespace="adroit-staging")


def can(user: str, verb: str, resource: str, namespace: str = "adroit") -> bool:
    resource, _, subresource = resource.partition("/")
    extra = [f"--subresource={subresource}"] if subresource else []
    result = kubectl(
        "auth", "can-i", verb, resource, *extra, "-n", namespace, user=user, check=False
    )
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize(
    ("user", "verb", "resource", "allowed"),
    [
        ("bob", "create", "flavors.adroit.dev", True),
        ("bob", "patch", "flavors.adroit.dev", True),
        ("bob", "create", "trains.adroit.dev", True),
        ("bob", "patch", "trains.adroit.dev", False),
        ("bob", "approve", "trains.adroit.dev", False),
        ("bob", "patch", "trains.adroit.dev/status", False),
        ("alice", "approve", "trains.adroit.dev", True),
        ("alice", "patch", "trains.adroit.dev", True),
        ("carol", "approve", "trains.adroit.dev", True),
        ("carol", "patch", "flavors.adroit.dev/status", False),
        ("alice", "create", "deployments.apps", False),
    ],
)
def test_roles(user: str, verb: str, resource: str, allowed: bool) -> None:
    assert can(user, verb, resource) is allowed


def test_get_adroit_lists_flavors_and_trains() -> None:
    name = unique("listed")
    apply(flavor(name), user="bob")
    try:
        out = kubectl("get", "adroit", "-A", user="bob").stdout
        assert f"flavor.adroit.dev/{name}" in out
        assert "OWNER" in out
        assert "MODEL VERSION" in out
        short = kubectl("get", "fl", name, "-n", NAMESPACE, user="bob").stdout
        assert "694a577a-4e2a-4aee-b81c-90ddc46d063b" in short
        assert (
            "No resources found" in kubectl("get", "tr", "-n", "adroit-staging", user="bob").stderr
        )
    finally:
        delete("flavor", name)


def test_explain_helps_a_person() -> None:
    shadow = kubectl("explain", "flavor.spec.shadow").stdout
    assert "in production only" in shadow
    assert "mirrorPercent" in shadow
    assert "trafficPercent" in shadow
    traffic = kubectl("explain", "flavor.spec.shadow.trafficPercent").stdout
    assert "after it was tested" in traffic
    train = kubectl("explain", "train.spec").stdout
    assert "Immutable once created" in train
