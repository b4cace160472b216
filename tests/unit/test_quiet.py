"""Status is written only when its content changes; the shadow keeps its own image."""

from adroit.api.train import Phase
from adroit.plan.reconcile import reconcile
from adroit.plan.stages import Stage
from tests.unit.sim import ALWAYS_OPEN, Sim, settings, spec
from tests.unit.test_trains import deployed


def test_a_settled_world_plans_nothing_on_a_second_pass() -> None:
    sim = Sim()
    deployed(sim, "ads", "v1")
    deployed(sim, "search", "s1")
    sim.run(600)
    world = sim.world()
    plan = reconcile(world, sim.settings)
    assert not plan.writes
    assert not plan.trains
    assert not plan.flavors
    assert plan.formation is None
    assert not plan.pruning


def test_a_verifying_train_writes_no_status_while_time_passes() -> None:
    sim = Sim(settings(ALWAYS_OPEN.replace("verifyFor: 30s", "verifyFor: 10m")))
    sim.apply_flavor("ads", spec("v1"))
    sim.run(5)
    train = sim.only_train()
    assert sim.phase(train) == Phase.VERIFYING
    status = sim.trains[train].status
    assert status.verifying_until is not None
    for _ in range(5):
        sim.now += (status.verifying_until - sim.now) / 2
        plan = sim.step()
        assert not plan.trains, "nothing in the status counts the seconds"
        assert not plan.flavors
        assert not plan.writes


def test_a_train_waiting_for_staging_writes_no_status_while_time_passes() -> None:
    sim = Sim()
    sim.broken.add("ads")
    sim.apply_flavor("ads", spec("v1"))
    sim.run(5)
    train = sim.only_train()
    status = sim.trains[train].status
    assert (status.phase, status.reason) == (Phase.STAGING, "WaitingForStaging")
    assert status.deadline is not None
    for _ in range(3):
        sim.now += (status.deadline - sim.now) / 4
        assert not sim.step().trains


def test_the_shadow_keeps_its_own_runtime_image_after_deployed() -> None:
    config = settings(
        ALWAYS_OPEN.replace(
            "runtimes: {scikit-learn-2022-10: repo/sklearn:1}",
            "runtimes: {scikit-learn-2022-10: repo/sklearn:1, torch-2: repo/torch:2}",
        )
    )
    sim = Sim(config)
    deployed(sim, "ads", "v1")
    shadow = {"model": {"version": "v2", "runtime": "torch-2"}, "mirrorPercent": 10}
    sim.apply_flavor("ads", spec("v1", shadow=shadow))
    sim.run(40)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    sim.approve(train)
    sim.run(60)
    assert sim.phase(train) == Phase.DEPLOYED

    def images() -> dict[str, str]:
        return {
            m["metadata"]["labels"]["adroit.dev/role"]: m["spec"]["template"]["spec"]["containers"][
                0
            ]["image"]
            for (kind, _), m in sim.objects[Stage.PRODUCTION].items()
            if kind == "Deployment"
        }

    assert images() == {"primary": "repo/sklearn:1", "shadow": "repo/torch:2"}
    plan = sim.step()  # a pass over the Deployed world
    assert not plan.writes
    assert not plan.formation, "no runtime release forms for what already runs"
    assert images() == {"primary": "repo/sklearn:1", "shadow": "repo/torch:2"}
    routed = sim.stage_world(Stage.PRODUCTION).running_release("ads")
    assert routed is not None
    assert routed.shadow_image == "repo/torch:2"
