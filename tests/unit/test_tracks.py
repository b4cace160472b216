"""The view of the tracks (adroit.plan.tracks), on statuses the pure planner wrote."""

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from adroit.api.train import Car, Phase, TrainSpec
from adroit.plan.tracks import Reading, as_data, look_at_tracks, where_is
from adroit.plan.window import window_state
from tests.unit.sim import Sim, settings, spec

CLOSED = """
deployWindow: {timezone: UTC, days: [Mon], start: "09:00", end: "10:00"}
runtimes: {scikit-learn-2022-10: repo/sklearn:1}
"""


def awaiting(sim: Sim) -> str:
    sim.apply_flavor("ads", spec("v1"), author="bob")
    sim.run(40)
    return sim.only_train()


def shipped(sim: Sim) -> str:
    train = awaiting(sim)
    sim.approve(train, by="carol")
    sim.run(10)
    return train


def rolled_back(sim: Sim) -> str:
    sim.broken.add("ads")
    sim.apply_flavor("ads", spec("v1"))
    sim.run(200)
    return sim.only_train()


def unseen(sim: Sim) -> str:
    train = shipped(sim)
    view = sim.flavors["ads"]
    sim.flavors["ads"] = replace(view, spec=spec("v2"), generation=view.generation + 1)
    return train


def waits_behind_a_train(sim: Sim) -> str:
    train = awaiting(sim)
    sim.apply_flavor("other", spec("v9"))
    sim.run(5)
    return train


def removing(sim: Sim) -> str:
    shipped(sim)
    sim.delete_flavor("ads")
    sim.run(40)
    return max(sim.trains, key=lambda n: sim.trains[n].order)


Scenario = Callable[[Sim], str]

WHERE = [
    # scenario, flavor, where, words of the message
    (awaiting, "ads", "AwaitingApproval", ["rides train", "any approver but bob"]),
    (shipped, "ads", "Shipped", ["runs in production", "(train train-"]),
    (rolled_back, "ads", "RolledBack", ["ended RolledBack", "does not ride again by itself"]),
    (unseen, "ads", "NotObserved", ["not yet seen by the operator"]),
    (waits_behind_a_train, "other", "AwaitingTrain", ["not yet on a train", "on the tracks"]),
    (removing, "ads", "AwaitingApproval", ["the removal rides train"]),
]


@pytest.mark.parametrize(("scenario", "flavor", "where", "words"), WHERE)
def test_where_a_flavors_change_is(
    scenario: Scenario, flavor: str, where: str, words: list[str]
) -> None:
    sim = Sim()
    train = scenario(sim)
    found = where_is(sim.flavors[flavor], sim.world())
    assert found.where == where, found.message
    for word in words:
        assert word in found.message, found.message
    if flavor == "ads":
        assert found.trains[0][0].name == train, "the newest train first"


def test_a_train_waiting_for_approval_says_who_may_approve_and_what_is_pending() -> None:
    sim = Sim()
    train = awaiting(sim)
    reading = Reading(created_by={train: "system:serviceaccount:adroit:adroit"})
    tracks = look_at_tracks(sim.world(), None, reading)
    on = tracks.on_tracks
    assert on is not None
    assert (on.name, on.phase, on.engineer) == (train, Phase.AWAITING_APPROVAL, "bob")
    assert on.may_not_approve == ("bob", "system:serviceaccount:adroit:adroit")
    assert on.staging == {"Verified": 1}
    assert on.production == {"Pending": 1}
    assert on.since == sim.world().trains[0].status.history[-1].at
    assert [(p.flavor, p.reason) for p in tracks.pending] == [("ads", "OnTrain")]
    assert tracks.queue == ()
    assert tracks.recent == ()


def test_without_separation_of_duties_anyone_who_may_approve_may() -> None:
    sim = Sim()
    awaiting(sim)
    tracks = look_at_tracks(sim.world(), None, Reading(separation_of_duties=False))
    assert tracks.on_tracks is not None
    assert tracks.on_tracks.may_not_approve == ()


def test_finished_trains_are_recent_newest_first_and_the_queue_is_in_order() -> None:
    sim = Sim()
    first = shipped(sim)
    sim.apply_flavor("ads", spec("v2"))
    sim.run(40)
    second = max(sim.trains, key=lambda n: sim.trains[n].order)
    for name in ("manual-a", "manual-b"):
        sim.create_train(name, TrainSpec(engineer="dora", cars=[Car(flavor="x", remove=True)]))
        sim.now += timedelta(seconds=1)
    tracks = look_at_tracks(sim.world(), None, recent=1)
    assert tracks.on_tracks is not None
    assert tracks.on_tracks.name == second
    assert [(t.name, t.position) for t in tracks.queue] == [("manual-a", 1), ("manual-b", 2)]
    assert [t.name for t in tracks.recent] == [first]
    assert tracks.recent[0].approved_by == "carol"
    assert tracks.train_count == 4


WINDOWS = [
    # settings, now, open, opens or closes at, why closed
    (CLOSED, datetime(2026, 11, 23, 9, 30, tzinfo=UTC), True, "closes", ""),
    (CLOSED, datetime(2026, 11, 23, 11, 0, tzinfo=UTC), False, "opens", "outside deploy hours"),
]


@pytest.mark.parametrize(("text", "now", "is_open", "change", "why"), WINDOWS)
def test_the_deploy_window(text: str, now: datetime, is_open: bool, change: str, why: str) -> None:
    window = settings(text).deploy_window
    tracks = look_at_tracks(Sim(now=now).world(), window_state(window, now))
    assert tracks.window.open is is_open
    at = tracks.window.closes_at if change == "closes" else tracks.window.opens_at
    assert at is not None
    assert at > now
    assert why in tracks.window.why_closed


def test_without_the_settings_the_window_is_what_a_waiting_train_says() -> None:
    sim = Sim(config=settings(CLOSED), now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    sim.apply_flavor("ads", spec("v1"))
    sim.run(5)
    tracks = look_at_tracks(sim.world(), None)
    assert tracks.window.open is False
    assert tracks.window.opens_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert [t.phase for t in tracks.queue] == ["Queued"]
    assert look_at_tracks(Sim().world(), None).window.open is None


def test_as_data_is_json_with_camel_case_keys_and_utc_times() -> None:
    sim = Sim()
    awaiting(sim)
    data = as_data(look_at_tracks(sim.world(), None))
    text = json.dumps(data)
    assert data["onTracks"]["mayNotApprove"] == ["bob"]
    assert data["onTracks"]["history"][0]["phase"] == "Queued"
    assert data["now"].endswith("Z")
    assert "may_not_approve" not in text


def test_status_reads_only_the_flavors_with_something_pending_and_says_the_same() -> None:
    from adroit.tools.look import observe

    sim = Sim()
    shipped(sim)
    for name, version in (("b", "v1"), ("c", "v1")):
        sim.apply_flavor(name, spec(version))
    sim.run(40)
    sim.apply_flavor("c", spec("v2"))  # not yet seen by the operator
    items = [
        {
            "metadata": {"name": v.name, "generation": v.generation, "resourceVersion": "1"},
            "spec": v.spec.to_wire(),
            "status": v.status.to_wire(),
        }
        for v in sim.flavors.values()
    ]
    trains = [
        {
            "metadata": {
                "name": t.name,
                "namespace": "adroit",
                "uid": t.name,
                "resourceVersion": "1",
                "creationTimestamp": t.created_at.isoformat(),
            },
            "spec": t.spec.to_wire(),
            "status": t.status.to_wire(),
        }
        for t in sim.trains.values()
    ]
    every = observe(items, trains, sim.now)
    pending = observe(items, trains, sim.now, pending_only=True)
    assert sorted(pending.world.flavors) == ["b", "c"], "ads is up to date: only counted"
    assert pending.settled == 1
    assert pending.look(None) == every.look(None)
