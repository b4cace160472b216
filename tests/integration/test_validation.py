"""The API server itself refuses bad Flavors and Trains, with a message that says what to do."""

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kube import NAMESPACE, REPO, apply, delete, flavor, get, kubectl, unique

SHADOW = {"model": {"version": "c80c6746-9dc7-417a-933d-9ddfc4afe3aa"}, "mirrorPercent": 10}
NOT_A_KEY = "is not a node label key: write a name of at most 63 letters"
NOT_A_VALUE = "is not a node label value: write at most 63 letters"


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid flavor's spec with the dotted `path` set to `value` (None: removed)."""
    spec = copy.deepcopy(flavor("x")["spec"])
    *parents, leaf = path.split(".")
    node = spec
    for part in parents:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(leaf)
    else:
        node[leaf] = value
    return spec


INVALID = [
    ("no-owner", _with("owner", None), "spec.owner: Required value"),
    ("empty-owner", _with("owner", ""), "spec.owner: Invalid value"),
    ("no-model-name", _with("model.name", None), "spec.model.name: Required value"),
    ("no-model-version", _with("model.version", None), "spec.model.version: Required value"),
    ("bad-version", _with("model.version", "v 1"), "spec.model.version: Invalid value"),
    ("bad-runtime", _with("model.runtime", "Scikit Learn"), "spec.model.runtime: Invalid value"),
    ("absolute-config", _with("model.configPath", "/etc/passwd"), "configPath is relative"),
    ("climbing-config", _with("model.configPath", "a/../../b"), "configPath is relative"),
    ("tiny-memory", _with("instances.memoryPerProcMiB", 0), "greater than or equal to 64"),
    ("no-prod-replicas", _with("instances.minProdContainers", 0), "greater than or equal to 1"),
    (
        "huge-container",
        _with("instances", {"memoryPerProcMiB": 200000, "procsPerContainer": 2}),
        "a container may reserve at most 256 GiB",
    ),
    ("unknown-field", _with("replicas", 3), 'unknown field "spec.replicas"'),
    (
        "primary-share",
        _with("shadow", {**SHADOW, "primaryPercent": 90}),
        'unknown field "spec.shadow.primaryPercent"',
    ),
    (
        "mirror-over-100",
        _with("shadow", {**SHADOW, "mirrorPercent": 101}),
        "less than or equal to 100",
    ),
    (
        "mirror-and-live",
        _with("shadow", {**SHADOW, "mirrorPercent": 10, "trafficPercent": 20}),
        "a shadow is mirrored or serves live traffic, never both",
    ),
    (
        "new-shadow-live",
        _with("shadow", {**SHADOW, "mirrorPercent": 0, "trafficPercent": 30}),
        "a new or changed shadow model must start with trafficPercent: 0",
    ),
    (
        "shadow-is-primary",
        _with("shadow", {"model": {"version": "694a577a-4e2a-4aee-b81c-90ddc46d063b"}}),
        "the shadow's model is the primary's",
    ),
    (
        "staging-only-shadow",
        {**_with("shadow", SHADOW), "stagingOnly": True},
        "a staging-only flavor has no shadow",
    ),
    (
        "prediction-path-unicode-space",  # RE2 and the operator's pydantic must agree
        _with(
            "verification",
            {"predictions": [{"name": "p", "body": "{}", "path": "/v2/models/a\u00a0b/infer"}]},
        ),
        "spec.verification.predictions[0].path: Invalid value",
    ),
    # nodeSelector goes into the pods' spec, where the API server checks it as labels.
    (
        "selector-value-space",
        _with("nodeSelector", {"pool": "gpu a100"}),
        f"nodeSelector value 'gpu a100' {NOT_A_VALUE}",
    ),
    (
        "selector-value-edge",
        _with("nodeSelector", {"pool": "gpu-"}),
        f"nodeSelector value 'gpu-' {NOT_A_VALUE}",
    ),
    (
        "selector-value-long",
        _with("nodeSelector", {"pool": "g" * 64}),
        "spec.nodeSelector.pool: Too long: may not be more than 63 bytes",
    ),
    (
        "selector-key-space",
        _with("nodeSelector", {"gpu type": "a100"}),
        f"nodeSelector key 'gpu type' {NOT_A_KEY}",
    ),
    (
        "selector-key-two-slashes",
        _with("nodeSelector", {"example.com/gpu/type": "a100"}),
        f"nodeSelector key 'example.com/gpu/type' {NOT_A_KEY}",
    ),
    (
        "selector-key-upper-prefix",
        _with("nodeSelector", {"Example.com/pool": "a100"}),
        f"nodeSelector key 'Example.com/pool' {NOT_A_KEY}",
    ),
    (
        "selector-key-empty-prefix",
        _with("nodeSelector", {"/pool": "a100"}),
        f"nodeSelector key '/pool' {NOT_A_KEY}",
    ),
    (
        "selector-key-long-name",
        _with("nodeSelector", {"p" * 64: "a100"}),
        f"nodeSelector key '{'p' * 64}' {NOT_A_KEY}",
    ),
    (
        "selector-key-long-prefix",
        _with("nodeSelector", {"a." * 127 + "b/pool": "a100"}),
        f"nodeSelector key '{'a.' * 127}b/pool' {NOT_A_KEY}",
    ),
]


@pytest.fixture
def cleanup() -> Iterator[list[tuple[str, str]]]:
    created: list[tuple[str, str]] = []
    yield created
    for kind, name in created:
        delete(kind, name)


@pytest.mark.parametrize(("case", "spec", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_flavor_is_refused(
    case: str, spec: dict[str, Any], message: str, cleanup: list
) -> None:
    name = unique(case)
    cleanup.append(("flavor", name))
    manifest = flavor(name)
    manifest["spec"] = spec
    result = apply(manifest, user="bob", check=False)
    assert result.returncode != 0, f"{case} was accepted"
    assert message in result.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 53, "a Flavor's name must be a DNS label of at most 52 characters"),
        ("9lives", "a Flavor's name must be a DNS label"),
        ("ads.pctr", "a Flavor's name must be a DNS label"),
    ],
)
def test_flavor_name_must_fit_deployment_names(name: str, message: str, cleanup: list) -> None:
    cleanup.append(("flavor", name))
    result = apply(flavor(name), user="bob", check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_samples_are_accepted(cleanup: list) -> None:
    for path in sorted(Path(REPO, "deploy", "samples").glob("*.yaml")):
        manifest = yaml.safe_load(path.read_text())
        manifest["metadata"]["namespace"] = NAMESPACE
        cleanup.append(("flavor", manifest["metadata"]["name"]))
        apply(manifest, user="bob")


def test_node_selector_of_labels_is_accepted(cleanup: list) -> None:
    name = unique("selector")
    cleanup.append(("flavor", name))
    selector = {
        "kubernetes.io/arch": "amd64",
        "pool": "gpu-a100",
        "example.com/dedicated": "",  # an empty label value is a value
        "a." * 126 + "b/" + "p" * 63: "v" * 63,  # the longest prefix, name and value
    }
    manifest = flavor(name)
    manifest["spec"]["nodeSelector"] = selector
    apply(manifest, user="bob")
    assert get("flavor", name)["spec"]["nodeSelector"] == selector


def test_defaults_are_filled_in(cleanup: list) -> None:
    name = unique("defaults")
    cleanup.append(("flavor", name))
    manifest = flavor(name)
    del manifest["spec"]["instances"]
    apply(manifest, user="bob")
    spec = yaml.safe_load(kubectl("get", "flavor", name, "-n", NAMESPACE, "-o", "yaml").stdout)[
        "spec"
    ]
    assert spec["stagingOnly"] is False
    assert spec["instances"] == {
        "memoryPerProcMiB": 1024,
        "procsPerContainer": 1,
        "minProdContainers": 2,
        "stagingContainers": 1,
    }


def test_live_traffic_only_after_the_shadow_was_tested(cleanup: list) -> None:
    name = unique("shadow")
    cleanup.append(("flavor", name))
    apply(flavor(name, shadow=SHADOW), user="bob")

    # Changing the shadow's model and routing live traffic to it in one step: refused.
    changed = flavor(name, shadow={"model": {"version": "b-new"}, "trafficPercent": 30})
    refused = apply(changed, user="bob", check=False)
    assert refused.returncode != 0
    assert "must start with trafficPercent: 0" in refused.stderr

    # The same shadow, mirrored before, now serves 30 %: allowed.
    apply(flavor(name, shadow={**SHADOW, "mirrorPercent": 0, "trafficPercent": 30}), user="bob")
    # Changing the primary's model under a shadow that inherits the rest is fine
    # as long as the shadow's own model stays the same.
    spec = flavor(name, shadow={**SHADOW, "mirrorPercent": 0, "trafficPercent": 30})
    spec["spec"]["instances"]["minProdContainers"] = 4
    apply(spec, user="bob")


def _train(name: str, cars: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "adroit.dev/v1alpha1",
        "kind": "Train",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"engineer": "bob", "cars": cars},
    }


def test_train_cars_never_change(cleanup: list) -> None:
    name = unique("train")
    cleanup.append(("train", name))
    car = {"flavor": "ads-pctr-v5", "revision": "3f2a9c1e", "spec": flavor("x")["spec"]}
    apply(_train(name, [car]), user="bob")

    other = {**car, "revision": "0badc0de"}
    result = kubectl(
        "patch",
        "-n",
        NAMESPACE,
        "train",
        name,
        "--type=merge",
        "-p",
        yaml.safe_dump({"spec": {"cars": [other]}}),
        check=False,
    )
    assert result.returncode != 0
    assert "a Train's spec is immutable once created" in result.stderr


@pytest.mark.parametrize(
    ("car", "message"),
    [
        (
            {"flavor": "a", "spec": flavor("x")["spec"]},
            "a car either names a flavor's revision",
        ),
        (
            {"flavor": "a", "remove": True, "revision": "1", "spec": flavor("x")["spec"]},
            "or says remove: true",
        ),
        ({"flavor": "Bad_Name", "remove": True}, "spec.cars[0].flavor: Invalid value"),
        (
            {
                "flavor": "a",
                "revision": "3f2a9c1e",
                "spec": {**flavor("x")["spec"], "nodeSelector": {"pool": "gpu a100"}},
            },
            f"nodeSelector value 'gpu a100' {NOT_A_VALUE}",
        ),
    ],
)
def test_bad_car_is_refused(car: dict[str, Any], message: str, cleanup: list) -> None:
    name = unique("train")
    cleanup.append(("train", name))
    result = apply(_train(name, [car]), user="bob", check=False)
    assert result.returncode != 0
    assert message in result.stderr
