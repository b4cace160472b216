"""Fields only the operator may set, tried by bob with the webhook on and with it off."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adroit.api.flavor import FlavorSpec
from adroit.plan.revision import flavor_revision
from tests.integration.operator import IMAGE, Operator, Webhook, own_operator
from tests.kube import apply, eventually, kubectl

EVIL = "registry.example/evil:latest"


@pytest.fixture(params=["webhook", "no-webhook"])
def op(request: pytest.FixtureRequest, tmp_path: Path, webhook: Webhook) -> Iterator[Operator]:
    extra: dict[str, Any] = {}
    if request.param == "no-webhook":
        extra["admission"] = {"enabled": False}
    with own_operator(tmp_path, webhook=webhook, **extra) as running:
        running.start()
        yield running


def hand_made(op: Operator, name: str, engineer: str = "bob", **car: Any) -> dict[str, Any]:
    """A Train as bob would write it, carrying one changed flavor."""
    spec = op.flavor("ads", version="v2")["spec"]
    revision = flavor_revision(FlavorSpec.model_validate(spec))
    train_spec: dict[str, Any] = {"engineer": engineer}
    if car.pop("runtimeRelease", False):
        train_spec["runtimeRelease"] = True
    train_spec["cars"] = [{"flavor": "ads", "revision": revision, "spec": spec, **car}]
    return {
        "apiVersion": "adroit.dev/v1alpha1",
        "kind": "Train",
        "metadata": {"name": name, "namespace": op.ns},
        "spec": train_spec,
    }


def webhook_on(op: Operator) -> bool:
    return op.admission_enabled()


@pytest.mark.parametrize(
    ("car", "field"),
    [
        ({"runtimeRelease": True}, "spec.runtimeRelease"),
        ({"image": EVIL}, "spec.cars[0] (ads).image"),
        ({"author": "mallory"}, "spec.cars[0] (ads).author"),
    ],
)
def test_operator_owned_fields_are_refused_or_ignored(
    op: Operator, car: dict[str, Any], field: str
) -> None:
    result = apply(hand_made(op, "by-hand", **car), user="bob", check=False)
    if webhook_on(op):
        assert result.returncode != 0
        assert field in result.stderr
        assert "only the operator sets" in result.stderr
        return
    # Without the webhook the train exists; the reconciler alone holds the gate.
    assert result.returncode == 0, result.stderr
    status = op.wait_phase("by-hand", "AwaitingApproval")["status"]
    ignored = next(h for h in status["history"] if h["reason"] == "UntrustedFieldsIgnored")
    assert field in ignored["message"]
    [staged] = op.deployments("staging", "ads")
    assert staged["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert op.deployments("production", "ads") == [], "it waits for a person"


def test_a_runtime_missing_from_the_catalog_is_refused_or_fails(op: Operator) -> None:
    train = hand_made(op, "odd-runtime")
    train["spec"]["cars"][0]["spec"]["model"]["runtime"] = "tensorflow-9"
    spec = FlavorSpec.model_validate(train["spec"]["cars"][0]["spec"])
    train["spec"]["cars"][0]["revision"] = flavor_revision(spec)
    result = apply(train, user="bob", check=False)
    if webhook_on(op):
        assert result.returncode != 0
        assert "runtime tensorflow-9 is not in the settings' runtime catalog" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    status = op.wait_phase("odd-runtime", "Failed")["status"]
    assert "tensorflow-9" in status["message"]


def test_a_train_carrying_a_flavor_twice_is_refused_or_fails(op: Operator) -> None:
    """The API server keeps a train's cars as one list (no per-car managedFields), so the
    webhook refuses a second car of the same flavor; without it the train fails at once."""
    train = hand_made(op, "twice")
    train["spec"]["cars"].append(dict(train["spec"]["cars"][0]))
    result = apply(train, user="bob", check=False)
    if webhook_on(op):
        assert result.returncode != 0
        assert "train twice: flavor ads rides this train more than once" in result.stderr
        assert "keep one car per flavor" in result.stderr
        assert kubectl("get", "train", "twice", "-n", op.ns, check=False).returncode != 0
        return
    assert result.returncode == 0, result.stderr
    status = op.wait_phase("twice", "Failed")["status"]
    assert status["reason"] == "RepeatedFlavor"
    assert "keep one car per flavor, and create a new Train" in status["message"]
    assert op.deployments("staging", "ads") == [], "nothing of it departed"


def test_a_flavor_naming_a_runtime_missing_from_the_catalog_is_refused_or_fails(
    op: Operator,
) -> None:
    flavor = op.flavor("odd", version="v1")
    flavor["spec"]["model"]["runtime"] = "tensorflow-9"
    result = apply(flavor, user="bob", check=False)
    if webhook_on(op):
        assert result.returncode != 0
        assert "Flavor odd: runtime tensorflow-9 is not in the settings' runtime catalog (" in (
            result.stderr
        )
        assert "or add the runtime to the operator's settings first" in result.stderr
        assert kubectl("get", "flavor", "odd", "-n", op.ns, check=False).returncode != 0
        return
    assert result.returncode == 0, result.stderr
    train = op.new_train()
    status = op.wait_phase(train, "Failed")["status"]
    assert "runtime tensorflow-9 is not in the settings' runtime catalog" in status["message"]


def test_an_abort_stops_the_train_and_says_who_asked(op: Operator) -> None:
    apply(hand_made(op, "to-abort"), user="bob")
    op.wait_phase("to-abort", "AwaitingApproval")
    kubectl("annotate", "train", "to-abort", "-n", op.ns, "adroit.dev/abort=true", user="alice")
    status = op.wait_phase("to-abort", "Aborted")["status"]
    entry = status["history"][-1]
    if webhook_on(op):
        assert entry["by"] == "alice"
        assert "aborted by alice" in entry["message"]
    else:
        assert "unverified requester" in entry["message"]


def test_notifications_are_escaped_for_slack(op: Operator, webhook: Webhook) -> None:
    engineer = "<!channel> & <@U123>"
    apply(hand_made(op, "loud", engineer=engineer), user="bob")
    op.wait_phase("loud", "AwaitingApproval")
    text = eventually(
        lambda: next((t for t in webhook.texts if "loud" in t), None),
        what="the notification",
    )
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in text
    assert "<" not in text, json.dumps(text)
    assert ">" not in text, json.dumps(text)


def test_a_train_too_large_for_its_status_is_refused_with_what_to_do(
    tmp_path: Path, webhook: Webhook
) -> None:
    """A Train created by CI with every spec embedded: beyond its spec's share of the 1.5 MiB
    that etcd keeps of one object, its status would find no room later. Refused at once,
    saying how to split it; the same cars naming their snapshots instead fit."""
    with own_operator(tmp_path, webhook=webhook) as op:
        op.start()
        spec = op.flavor("ads", version="v2")["spec"]
        spec["model"]["configPath"] = "ads_pctr/" + "c" * 200 + "/config.yaml"
        revision = flavor_revision(FlavorSpec.model_validate(spec))
        cars = [{"flavor": f"ads-{i:04d}", "revision": revision, "spec": spec} for i in range(1500)]
        train = {
            "apiVersion": "adroit.dev/v1alpha1",
            "kind": "Train",
            "metadata": {"name": "everything", "namespace": op.ns},
            "spec": {"engineer": "bob", "cars": cars},
        }
        created = kubectl("create", "-f", "-", user="bob", stdin=json.dumps(train), check=False)
        assert created.returncode != 0
        assert "train everything: its spec takes" in created.stderr
        assert "split its cars into two or more Trains" in created.stderr
        assert op.trains() == []
        for car in cars:
            del car["spec"]
        kubectl("create", "-f", "-", user="bob", stdin=json.dumps(train))
        assert [t["metadata"]["name"] for t in op.trains()] == ["everything"]
