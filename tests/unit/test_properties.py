"""Properties of the train planner over random sequences of what people and clusters do."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adroit.api.train import FINISHED, Phase
from adroit.plan.render import Stage
from tests.unit.sim import Sim, spec

FLAVORS = ("ads", "search", "exp")
NEXT = {
    Phase.QUEUED: {Phase.STAGING, Phase.ABORTED, Phase.FAILED},
    Phase.STAGING: {Phase.VERIFYING, Phase.ROLLED_BACK, Phase.QUEUED, Phase.ABORTED, Phase.FAILED},
    Phase.VERIFYING: {
        Phase.AWAITING_APPROVAL,
        Phase.PROMOTING,
        Phase.DEPLOYED,
        Phase.ROLLED_BACK,
        Phase.QUEUED,
        Phase.ABORTED,
        Phase.FAILED,
    },
    Phase.AWAITING_APPROVAL: {
        Phase.PROMOTING,
        Phase.ROLLED_BACK,
        Phase.QUEUED,
        Phase.ABORTED,
        Phase.FAILED,
    },
    Phase.PROMOTING: {Phase.DEPLOYED, Phase.FAILED, Phase.ABORTED},
}

actions = st.lists(
    st.one_of(
        st.tuples(st.just("change"), st.sampled_from(FLAVORS), st.integers(1, 4), st.booleans()),
        st.tuples(st.just("approve"), st.integers(0, 5)),
        st.tuples(st.just("abort"), st.integers(0, 5)),
        st.tuples(st.just("break"), st.sampled_from(FLAVORS)),
        st.tuples(st.just("fix"), st.sampled_from(FLAVORS)),
        st.tuples(st.just("delete"), st.sampled_from(FLAVORS)),
        st.tuples(st.just("wait"), st.sampled_from([5, 30, 150])),
    ),
    max_size=25,
)


def act(sim: Sim, action: tuple) -> None:
    kind, *args = action
    trains = sorted(sim.trains)
    if kind == "change":
        name, version, staging_only = args
        if name in sim.flavors and sim.flavors[name].deleting:
            return
        sim.apply_flavor(name, spec(f"{name}{version}", stagingOnly=staging_only))
    elif kind in ("approve", "abort") and trains:
        train = trains[args[0] % len(trains)]
        if kind == "approve":
            sim.approve(train)
        else:
            sim.annotate(train, abort=True, abort_by="alice")
    elif kind == "break":
        sim.broken.add(args[0])
    elif kind == "fix":
        sim.broken.discard(args[0])
    elif kind == "delete" and args[0] in sim.flavors:
        sim.delete_flavor(args[0])
    elif kind == "wait":
        sim.run(args[0])


def check(sim: Sim) -> None:
    assert len(sim.on_tracks()) <= 1, f"two trains on the tracks: {sim.on_tracks()}"
    for workload in sim.stage_world(Stage.PRODUCTION).workloads:
        assert workload.release is not None
        assert not workload.release.spec.staging_only, "a staging-only revision reached production"
    for train in sim.trains.values():
        status = train.status
        if status.phase not in FINISHED:
            assert status.reason, f"{train.name} waits without saying why"
            assert status.message, f"{train.name} waits without saying why"
        for before, after in zip(status.history, status.history[1:], strict=False):
            assert after.phase in NEXT[before.phase], f"{before.phase} -> {after.phase}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_invariants_hold_after_anything(steps: list[tuple]) -> None:
    sim = Sim()
    for action in steps:
        act(sim, action)
        sim.settle()
        check(sim)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_every_train_finishes_once_people_and_clusters_cooperate(steps: list[tuple]) -> None:
    sim = Sim()
    for action in steps:
        act(sim, action)
        sim.settle()
    sim.broken.clear()
    for _ in range(12):  # approve whatever waits, let time pass
        for name, train in sim.trains.items():
            if train.status.phase == Phase.AWAITING_APPROVAL:
                sim.approve(name)
        sim.run(150, tick=15)
        check(sim)
    unfinished = {
        n: t.status.reason for n, t in sim.trains.items() if t.status.phase not in FINISHED
    }
    assert not unfinished, unfinished
    for name, view in sim.flavors.items():
        if view.deleting:
            continue
        home = Stage.STAGING if view.spec.staging_only else Stage.PRODUCTION
        pending = {c.type: c for c in view.status.conditions}["PendingChanges"]
        assert (
            sim.running(home, name) == view.spec.model.version or pending.reason == "NotDeployed"
        ), (name, pending)
