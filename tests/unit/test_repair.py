"""Drift is put back, and one flavor's refused write fails only its own car."""

import copy
from typing import Any

import pytest

from adroit.api.train import CarState, Phase
from adroit.plan import render
from adroit.plan.drift import added_by_others, contains
from adroit.plan.observe import flavor_of
from adroit.plan.stages import Stage
from tests.unit.sim import Sim, spec
from tests.unit.test_trains import deployed


def live(sim: Sim, stage: Stage, kind: str, flavor: str) -> tuple[tuple[str, str], dict[str, Any]]:
    """A copy of one live object of the flavor, to edit as a person with kubectl would."""
    key = next(
        k
        for k, m in sim.objects[stage].items()
        if k[0] == kind and m["metadata"]["labels"]["adroit.dev/flavor"] == flavor
    )
    return key, copy.deepcopy(sim.objects[stage][key])


def conditions(sim: Sim, flavor: str) -> dict[str, Any]:
    return {c.type: c for c in sim.flavors[flavor].status.conditions}


def test_replicas_scaled_to_zero_are_put_back_and_ready_says_so_meanwhile() -> None:
    sim = Sim()
    deployed(sim)
    key, deployment = live(sim, Stage.PRODUCTION, "Deployment", "ads")
    deployment["spec"]["replicas"] = 0
    sim.objects[Stage.PRODUCTION][key] = deployment
    plan = sim.step()
    assert [(m["kind"], m["spec"]["replicas"]) for m in plan.writes.apply] == [("Deployment", 3)]
    ready = {c.type: c for c in plan.flavors["ads"].conditions}["Ready"]
    assert (ready.status, ready.reason) == ("False", "NotAvailable"), "0 available is not Ready"
    assert plan.flavors["ads"].production is not None
    assert plan.flavors["ads"].production.ready_containers == 0
    assert plan.flavors["ads"].production.wanted_containers == 3, "wanted comes from the spec"
    sim.run(5)
    assert conditions(sim, "ads")["Ready"].status == "True"


def test_an_edited_image_is_put_back() -> None:
    sim = Sim()
    deployed(sim)
    for stage in Stage:
        key, deployment = live(sim, stage, "Deployment", "ads")
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "evil/image:1"
        sim.objects[stage][key] = deployment
    plan = sim.step()
    images = [m["spec"]["template"]["spec"]["containers"][0]["image"] for m in plan.writes.apply]
    assert images == ["repo/sklearn:1", "repo/sklearn:1"], "both stages are repaired"


def test_deleted_service_route_and_budget_are_applied_again() -> None:
    sim = Sim()
    deployed(sim)
    for kind in ("Service", "HTTPRoute", "PodDisruptionBudget"):
        gone = [k for k in sim.objects[Stage.PRODUCTION] if k[0] == kind]
        for key in gone:
            del sim.objects[Stage.PRODUCTION][key]
        plan = sim.step()
        assert sorted(k for k in gone) == sorted(
            (m["kind"], m["metadata"]["name"]) for m in plan.writes.apply
        ), kind
        assert sim.running(Stage.PRODUCTION, "ads") == "v1"
        assert not sim.step().writes, "one pass puts it back"


def test_a_settled_world_is_left_alone_and_server_defaults_are_no_drift() -> None:
    sim = Sim()
    deployed(sim)
    key, deployment = live(sim, Stage.PRODUCTION, "Deployment", "ads")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    memory = container["resources"]["requests"]["memory"]
    assert memory == "1500Mi"
    container["resources"]["requests"]["memory"] = "1536000Ki"  # the same, written otherwise
    container["imagePullPolicy"] = "IfNotPresent"  # a default the API server adds
    container["ports"][0]["protocol"] = "TCP"
    deployment["spec"]["strategy"] = {"type": "RollingUpdate"}
    sim.objects[Stage.PRODUCTION][key] = deployment
    plan = sim.step()
    assert not plan.writes
    assert not plan.flavors
    assert not plan.trains


def test_containment_rules() -> None:
    assert contains(
        {"a": 1, "resources": {"c": "1Gi"}, "x": 0}, {"a": 1.0, "resources": {"c": "1024Mi"}}
    )
    # Only resources are quantities: SERVING_PROCESSES=1000m is an edit to put back.
    assert not contains({"env": [{"value": "1000m"}]}, {"env": [{"value": "1"}]})
    assert not contains({"b": {"c": "1Gi"}}, {"b": {"c": "1024Mi"}})
    assert not contains({"a": [1, 2, 3]}, {"a": [1, 2]}), "lists have equal length"
    assert contains({"a": [{"x": 1, "y": 2}]}, {"a": [{"x": 1}]})
    assert not contains({"a": "repo/x:1"}, {"a": "repo/x:2"})
    assert not contains({}, {"a": 0})


def managed(manager: str, spec: dict[str, Any], subresource: str = "") -> dict[str, Any]:
    """A managedFields entry, as the API server writes it."""
    entry = {"manager": manager, "operation": "Update", "fieldsV1": {"f:spec": spec}}
    return {**entry, "subresource": subresource} if subresource else entry


NODE_SELECTOR = {"f:template": {"f:spec": {"f:nodeSelector": {".": {}, "f:pool": {}}}}}
RESTART = {
    "f:template": {
        "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/restartedAt": {}}}
    }
}
OURS = {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}}


def test_what_others_added_to_a_spec_is_told_by_its_field_managers() -> None:
    def added(*entries: dict[str, Any]) -> tuple[str, ...]:
        return added_by_others({"metadata": {"managedFields": [*entries]}})

    ours = {**managed("adroit", OURS), "operation": "Apply"}
    assert added(ours, managed("kubectl-patch", NODE_SELECTOR)) == (
        "spec.template.spec.nodeSelector.pool",
    )
    sidecar = {"f:template": {"f:spec": {"f:containers": {'k:{"name":"sidecar"}': {".": {}}}}}}
    assert added(ours, managed("kubectl-patch", sidecar)) == (), "a marker alone is no field"
    assert added(ours, managed("kubectl-rollout", RESTART)) == (), "a restart is kept"
    assert added(ours, managed("kubectl", {"f:replicas": {}}, "scale")) == (), "a subresource"
    assert added(ours, managed("kubectl-edit", {"f:replicas": {}})) == (), "a field we set too"
    assert added(ours) == ()


def test_a_field_added_by_hand_is_drift() -> None:
    sim = Sim()
    deployed(sim)
    key, deployment = live(sim, Stage.PRODUCTION, "Deployment", "ads")
    deployment["metadata"]["managedFields"] = [managed("kubectl-rollout", RESTART)]
    sim.objects[Stage.PRODUCTION][key] = deployment
    assert not sim.step().writes, "kubectl rollout restart is left alone"
    deployment["metadata"]["managedFields"].append(managed("kubectl-patch", NODE_SELECTOR))
    plan = sim.step()
    assert [(m["kind"], m["metadata"]["name"]) for m in plan.writes.apply] == [key]


def test_an_object_is_of_the_flavor_its_name_says() -> None:
    label = "adroit.dev/flavor"
    # A Deployment, or the Service of one: the flavor's name and a release hash.
    assert flavor_of("ads-0123456789", {label: "ads"}, per_release=True) == "ads"
    assert flavor_of("ads-0123456789", {label: "feed"}, True) == "ads", "relabelled by hand"
    assert flavor_of("ads-v2-0123456789", {}, True) == "ads-v2", "its label taken off"
    dated = "ranker-2024061201"  # a flavor whose own name ends as a hash would
    assert flavor_of(f"{dated}-abcdef0123", {label: "oops"}, True) == dated
    assert flavor_of("by-hand", {label: "ads"}, True) == "ads", "a name not the operator's"
    # The stable Service, the budget, the route: the flavor's name as is.
    assert flavor_of("ads", {label: "feed"}, per_release=False) == "ads"
    assert flavor_of(dated, {}, False) == dated


def test_a_relabelled_object_is_labelled_back_not_deleted() -> None:
    sim = Sim()
    deployed(sim)
    for kind in ("Deployment", "Service"):
        key, obj = live(sim, Stage.PRODUCTION, kind, "ads")
        obj["metadata"]["labels"]["adroit.dev/flavor"] = "feed"
        sim.objects[Stage.PRODUCTION][key] = obj
        plan = sim.step()
        assert not plan.writes.delete, kind
        [put_back] = plan.writes.apply
        assert (put_back["kind"], put_back["metadata"]["labels"]["adroit.dev/flavor"]) == (
            kind,
            "ads",
        )


def test_a_refused_write_rolls_back_only_its_own_train() -> None:
    sim = Sim()
    sim.apply_flavor("good", spec("g1"))
    sim.run(40)
    first = sim.only_train()
    sim.approve(first)
    sim.run(10)
    assert sim.phase(first) == Phase.DEPLOYED

    sim.apply_flavor("poison", spec("p1"))
    sim.refused[("poison", Stage.STAGING)] = (
        'Deployment.apps "poison-x" is invalid: spec.template.spec.nodeSelector: '
        'Invalid value: "gpu a100"'
    )
    sim.run(10)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    status = sim.trains[train].status
    assert (status.phase, status.reason) == (Phase.ROLLED_BACK, "WriteRefused")
    assert "car poison in staging" in (status.message or "")
    assert "Invalid value" in (status.message or "")
    car = status.cars[0]
    assert (car.flavor, car.staging, car.reason) == ("poison", CarState.FAILED, "Failed")
    assert "Invalid value" in (car.message or "")
    told = [n.message for name, n in sim.notices if name == train and n.notify]
    assert told
    assert "poison" in told[-1]
    assert "Invalid value" in told[-1]
    assert sim.running(Stage.PRODUCTION, "good") == "g1", "the other flavor carries on"

    sim.apply_flavor("good", spec("g2"))  # the next train forms and runs
    sim.run(40)
    later = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    assert later != train
    assert [c.flavor for c in sim.trains[later].spec.cars] == ["good"]
    assert sim.phase(later) == Phase.AWAITING_APPROVAL


def test_a_refused_production_write_fails_the_promotion() -> None:
    sim = Sim()
    deployed(sim, "ads", "v1")
    sim.apply_flavor("ads", spec("v2"))
    sim.run(40)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    sim.refused[("ads", Stage.PRODUCTION)] = "the server could not find the requested resource"
    sim.approve(train)
    sim.run(10)
    status = sim.trains[train].status
    assert (status.phase, status.reason) == (Phase.FAILED, "WriteRefused")
    assert status.cars[0].production == CarState.FAILED
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"


def render_breaks_for(monkeypatch: pytest.MonkeyPatch, flavor: str) -> None:
    """Rendering raises for one flavor, as a bug or bad data would."""
    original = render.pod_template

    def broken(release: Any, stage: Stage) -> Any:
        if release.flavor == flavor:
            raise RuntimeError("a bug in rendering")
        return original(release, stage)

    monkeypatch.setattr(render, "pod_template", broken)


def test_a_car_that_cannot_be_rendered_fails_only_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = Sim()
    sim.apply_flavor("good", spec("g1"))
    sim.apply_flavor("bad", spec("b1"))
    sim.run(5)
    train = sim.only_train()
    assert sim.phase(train) == Phase.VERIFYING
    render_breaks_for(monkeypatch, "bad")
    sim.run(5)
    status = sim.trains[train].status
    assert sim.phase(train) == Phase.ROLLED_BACK
    cars = {c.flavor: c for c in status.cars}
    assert cars["bad"].staging == CarState.FAILED
    assert "a bug in rendering" in (cars["bad"].message or "")
    assert cars["good"].staging == CarState.REVERTED


def test_a_flavor_that_cannot_be_rendered_stops_no_other(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = Sim()
    deployed(sim, "good", "g1")
    deployed(sim, "other", "o1")
    render_breaks_for(monkeypatch, "good")
    key, deployment = live(sim, Stage.PRODUCTION, "Deployment", "other")
    deployment["spec"]["replicas"] = 0
    sim.objects[Stage.PRODUCTION][key] = deployment
    plan = sim.step()
    assert set(plan.errors) == {("good", Stage.STAGING), ("good", Stage.PRODUCTION)}
    assert "a bug in rendering" in plan.errors[("good", Stage.PRODUCTION)]
    assert [m["metadata"]["labels"]["adroit.dev/flavor"] for m in plan.writes.apply] == ["other"], (
        "the other flavor is still repaired in the same pass"
    )


def test_a_missing_snapshot_fails_the_car_with_its_name() -> None:
    sim = Sim()
    sim.apply_flavor("ads", spec("v1"))
    sim.step()
    train = sim.only_train()
    assert sim.trains[train].spec.cars[0].spec is None, "formed trains embed no spec"
    sim.revisions.clear()
    sim.run(10)
    status = sim.trains[train].status
    assert status.phase in (Phase.ROLLED_BACK, Phase.FAILED)
    assert "snapshot ads-" in (status.message or "")
    assert "not found" in (status.message or "")
