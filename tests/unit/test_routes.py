"""Traffic routes for shadows, and the runbook's rules, as pure functions (SPEC section 5)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adroit.api.settings import Traffic
from adroit.api.train import Phase
from adroit.plan.render import Stage
from adroit.plan.routes import Split, applied_split, render_route, shadow_refusal, split_of
from adroit.plan.world import Quota
from tests.unit.sim import Sim, spec

GATEWAY = Traffic.model_validate(
    {"router": "gateway", "gateway": {"name": "ml", "namespace": "gw"}}
)
MESH = Traffic.model_validate({"router": "gateway"})
ISTIO = Traffic.model_validate({"router": "istio"})


def test_mirroring_copies_a_share_while_the_primary_serves_all() -> None:
    route = render_route("ads", "prod", "ads-aaa", "ads-bbb", split_of(0, 10), GATEWAY)
    assert route is not None
    assert route["kind"] == "HTTPRoute"
    assert route["spec"]["parentRefs"] == [{"name": "ml", "namespace": "gw"}]
    rule = route["spec"]["rules"][0]
    assert rule["backendRefs"] == [
        {"name": "ads-aaa", "port": 80, "weight": 100},
        {"name": "ads-bbb", "port": 80, "weight": 0},
    ]
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": "ads-bbb", "port": 80}, "percent": 10},
        }
    ]


def test_live_share_is_a_weight() -> None:
    route = render_route("ads", "prod", "ads-aaa", "ads-bbb", split_of(30, 0), MESH)
    assert route is not None
    assert route["spec"]["parentRefs"] == [
        {"group": "", "kind": "Service", "name": "ads", "port": 80}
    ]
    rule = route["spec"]["rules"][0]
    assert [b["weight"] for b in rule["backendRefs"]] == [70, 30]
    assert "filters" not in rule


def test_istio_virtual_service() -> None:
    route = render_route("ads", "prod", "ads-aaa", "ads-bbb", split_of(0, 25), ISTIO)
    assert route is not None
    assert route["kind"] == "VirtualService"
    http = route["spec"]["http"][0]
    assert [r["weight"] for r in http["route"]] == [100, 0]
    assert http["mirror"]["host"] == "ads-bbb.prod.svc.cluster.local"
    assert http["mirrorPercentage"] == {"value": 25.0}
    live = render_route("ads", "prod", "ads-aaa", "ads-bbb", split_of(40, 0), ISTIO)
    assert live is not None
    assert "mirror" not in live["spec"]["http"][0]


def test_no_router_no_route() -> None:
    assert render_route("ads", "p", "a", None, Split(100), Traffic(router="none")) is None


@given(st.integers(0, 100), st.integers(0, 100), st.sampled_from([GATEWAY, MESH, ISTIO]))
def test_weights_sum_to_100_and_mirror_and_live_never_both(
    live: int, mirror: int, traffic: Traffic
) -> None:
    if live and mirror:
        with pytest.raises(ValueError, match="never both"):
            split_of(live, mirror)
        return
    route = render_route("ads", "prod", "ads-aaa", "ads-bbb", split_of(live, mirror), traffic)
    assert route is not None
    if route["kind"] == "HTTPRoute":
        weights = [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]]
    else:
        weights = [r["weight"] for r in route["spec"]["http"][0]["route"]]
    assert sum(weights) == 100
    applied = applied_split(route, "ads-aaa", "ads-bbb")
    assert applied == Split(100 - live, live, mirror)
    assert not (applied.mirror and applied.shadow)


@pytest.mark.parametrize(
    ("shadow", "traffic", "says"),
    [
        ({"mirrorPercent": 60}, MESH, "over the mirror cap of 50"),
        ({"mirrorPercent": 50}, MESH, None),
        ({"trafficPercent": 30}, Traffic(router="none"), "shadows need a traffic router"),
        ({"mirrorPercent": 10}, Traffic(mirrorCapPercent=5), "mirror cap of 5"),
        (None, Traffic(router="none"), None),
    ],
)
def test_runbook_rules_that_depend_on_the_settings(
    shadow: dict | None, traffic: Traffic, says: str | None
) -> None:
    why = shadow_refusal(shadow, traffic)
    assert (why is None) if says is None else (why is not None and says in why)


# --- a shadow's life through trains, on the planner ----------------------


def ride(sim: Sim) -> str:
    sim.run(40)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    if sim.phase(train) == Phase.AWAITING_APPROVAL:
        sim.approve(train)
        sim.run(5)
    return train


def traffic(sim: Sim) -> dict:
    production = sim.flavors["ads"].status.production
    assert production is not None
    assert production.traffic is not None
    return production.traffic.model_dump()


def test_mirror_then_live_then_cutover_without_a_restart() -> None:
    sim = Sim()
    sim.apply_flavor("ads", spec("v1"))
    ride(sim)
    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "mirrorPercent": 10}))
    assert sim.phase(ride(sim)) == Phase.DEPLOYED
    names = {w.role: w.name for w in sim.stage_world(Stage.PRODUCTION).workloads}
    assert set(names) == {"primary", "shadow"}
    assert traffic(sim) | {"shadow_model_version": None} == {
        "primary_percent": 100,
        "shadow_percent": 0,
        "mirror_percent": 10,
        "shadow_model_version": None,
        "shadow_is_primary": False,
    }
    assert traffic(sim)["shadow_model_version"] == "v2"
    assert not sim.stage_world(Stage.STAGING).of("ads")[0][1:], "no shadow in staging"

    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "trafficPercent": 30}))
    ride(sim)
    assert (traffic(sim)["primary_percent"], traffic(sim)["shadow_percent"]) == (70, 30)

    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "trafficPercent": 100}))
    ride(sim)
    assert traffic(sim)["shadow_is_primary"]

    sim.apply_flavor("ads", spec("v2"))  # the shadow's version becomes the primary's
    ride(sim)
    after = {w.role: w.name for w in sim.stage_world(Stage.PRODUCTION).workloads}
    assert after == {"primary": names["shadow"]}, "same Deployment, now primary; old one gone"
    assert traffic(sim)["primary_percent"] == 100


def test_a_promotion_that_does_not_fit_the_quota_waits() -> None:
    sim = Sim()
    sim.quota = Quota(hard_mib=6000, used_mib=0)  # the primary needs 3 x 1500
    sim.apply_flavor("ads", spec("v1"))
    assert sim.phase(ride(sim)) == Phase.DEPLOYED
    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "mirrorPercent": 10}))
    train = ride(sim)
    status = sim.trains[train].status
    assert (status.phase, status.reason) == (Phase.AWAITING_APPROVAL, "InsufficientQuota")
    assert "1500 MiB of memory free, but this promotion needs 4500 MiB (ads shadow 4500 MiB)" in (
        status.message or ""
    )
    assert not sim.stage_world(Stage.PRODUCTION).of("ads")[0][1:], "no half rollout"
    sim.quota = Quota(hard_mib=9000, used_mib=0)
    sim.run(5)
    assert sim.phase(train) == Phase.DEPLOYED
