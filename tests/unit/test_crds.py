"""crds/ is generated from the models, is what the API server can accept, and agrees with them."""

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from adroit.api.base import LABEL_VALUE
from adroit.api.crd import flavor_crd, render_crds, train_crd
from adroit.api.flavor import LABEL_VALUE_OR_EMPTY, FlavorSpec
from tests.kube import REPO


def test_crds_directory_is_current() -> None:
    for name, text in render_crds().items():
        path = Path(REPO, "crds", name)
        assert path.exists(), f"crds/{name} is missing: run `make crds`"
        assert path.read_text() == text, f"crds/{name} is stale: run `make crds`"


def _walk(schema: dict[str, Any], path: str = ""):
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("crd", [flavor_crd(), train_crd()], ids=["flavor", "train"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(root):
        assert "type" in node, f"{path} has no type"
        for keyword in ("$ref", "anyOf", "oneOf", "allOf", "title", "additionalProperties"):
            if keyword == "additionalProperties" and isinstance(node.get(keyword), dict):
                continue
            assert keyword not in node, f"{path} uses {keyword}"


@pytest.mark.parametrize("crd", [flavor_crd(), train_crd()], ids=["flavor", "train"])
def test_every_spec_field_is_explained(crd: dict[str, Any]) -> None:
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for path, node in _walk(spec, ".spec"):
        if path.endswith("{}"):
            continue  # the values of a map are described by the map
        assert node.get("description"), f"`kubectl explain` would show nothing for {path}"


def test_embedded_car_spec_keeps_rules_but_not_transition_rules() -> None:
    root = train_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    car_spec = root["properties"]["spec"]["properties"]["cars"]["items"]["properties"]["spec"]
    rules = [r["rule"] for r in car_spec["x-kubernetes-validations"]]
    assert rules, "a car's spec is checked like a Flavor's"
    assert not any("oldSelf" in r for r in rules)


def test_names_and_columns() -> None:
    flavors, trains = flavor_crd()["spec"], train_crd()["spec"]
    assert flavors["names"]["shortNames"] == ["fl"]
    assert trains["names"]["shortNames"] == ["tr"]
    assert flavors["names"]["categories"] == trains["names"]["categories"] == ["adroit"]
    columns = {c["name"] for c in trains["versions"][0]["additionalPrinterColumns"]}
    assert {"Phase", "Engineer", "Cars", "Age"} <= columns
    columns = {c["name"] for c in flavors["versions"][0]["additionalPrinterColumns"]}
    assert {"Owner", "Model Version", "Staging", "Production", "Age"} <= columns


@given(st.text(alphabet="aZ09-_.é /\n", max_size=8))
def test_short_label_value_pattern_is_the_label_value_pattern(text: str) -> None:
    # The CRD uses a shorter spelling to keep the Train's CEL cost down; it must mean the same.
    short = re.fullmatch(LABEL_VALUE_OR_EMPTY, text, re.ASCII) is not None
    assert short == (text == "" or re.fullmatch(LABEL_VALUE, text) is not None)


@pytest.mark.parametrize(
    ("selector", "problem"),
    [
        ({"kubernetes.io/arch": "amd64", "pool": "gpu-a100", "dedicated": ""}, None),
        ({"pool": "gpu a100"}, "nodeSelector value 'gpu a100' is not a node label value"),
        ({"pool": "v" * 64}, "is not a node label value"),
        ({"gpu type": "a100"}, "nodeSelector key 'gpu type' is not a node label key"),
        ({"example.com/gpu/type": "a100"}, "is not a node label key"),
        ({"a." * 127 + "b/pool": "a100"}, "is not a node label key"),
        ({"pool\n": "a100"}, "is not a node label key"),
    ],
)
def test_the_model_refuses_what_the_crd_refuses(
    selector: dict[str, str], problem: str | None
) -> None:
    # The operator reads Flavors with the model: it must not refuse what the API server admits.
    spec = {"owner": "ads", "model": {"name": "m", "version": "v1"}, "nodeSelector": selector}
    if problem is None:
        assert FlavorSpec.model_validate(spec).node_selector == selector
    else:
        with pytest.raises(ValidationError, match=re.escape(problem)):
            FlavorSpec.model_validate(spec)
