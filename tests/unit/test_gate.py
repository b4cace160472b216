"""On the pure planner: approvals cover one staging, the runbook is
checked against production, and separation of duties covers every author."""

from datetime import UTC, datetime

from adroit.api import names
from adroit.api.train import Car, HistoryEntry, Phase, TrainSpec, TrainStatus
from adroit.plan.approvals import Request, Stamp, refusal, rounds, sign, verify
from adroit.plan.authorship import authors_since, read_history, with_change, write_author
from adroit.plan.machine import since
from adroit.plan.render import Stage
from tests.unit.sim import ALWAYS_OPEN, Sim, settings, spec

AT = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
ARGOCD = "system:serviceaccount:argocd:argocd-application-controller"


def latest(sim: Sim) -> str:
    return max(sim.trains, key=lambda n: (sim.trains[n].created_at, n))


def ship(sim: Sim, name: str, flavor_spec: object, by: str = "alice") -> str:
    sim.apply_flavor(name, flavor_spec)  # type: ignore[arg-type]
    sim.run(40)
    train = latest(sim)
    sim.approve(train, by=by)
    sim.run(10)
    return train


def car_status(sim: Sim, train: str, flavor: str) -> object:
    return next(c for c in sim.trains[train].status.cars if c.flavor == flavor)


# --- the runbook holds, checked against production -------------------------


def test_live_traffic_to_a_shadow_production_never_mirrored_fails_the_car() -> None:
    sim = Sim()
    ship(sim, "ads", spec("v1"))
    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "trafficPercent": 100}))
    sim.run(40)
    train = latest(sim)
    assert sim.phase(train) == Phase.FAILED
    status = sim.trains[train].status
    assert status.reason == "RunbookRefused"
    car = status.cars[0]
    assert (car.staging, car.production, car.reason) == (
        "Failed",
        "Failed",
        "UntestedShadowTraffic",
    )
    assert "route live traffic to it in a later change" in (car.message or "")
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"
    assert len(sim.trains) == 2, "the refused revision does not ride again by itself"


def test_live_traffic_after_production_mirrored_that_shadow_is_allowed() -> None:
    sim = Sim()
    ship(sim, "ads", spec("v1", shadow={"model": {"version": "v2"}, "mirrorPercent": 10}))
    train = ship(sim, "ads", spec("v1", shadow={"model": {"version": "v2"}, "trafficPercent": 30}))
    assert sim.phase(train) == Phase.DEPLOYED, sim.trains[train].status


def test_a_car_over_the_mirror_cap_fails_alone_and_the_rest_goes_on() -> None:
    sim = Sim(settings(ALWAYS_OPEN + "traffic: {mirrorCapPercent: 20}\n"))
    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "mirrorPercent": 30}))
    sim.apply_flavor("feed", spec("v1"))
    sim.run(40)
    train = sim.only_train()
    assert sim.phase(train) == Phase.AWAITING_APPROVAL
    assert sim.running(Stage.STAGING, "ads") is None, "a refused car is never staged"
    sim.approve(train)
    sim.run(10)
    assert sim.phase(train) == Phase.DEPLOYED
    assert sim.running(Stage.PRODUCTION, "feed") == "v1"
    assert sim.running(Stage.PRODUCTION, "ads") is None
    ads = car_status(sim, train, "ads")
    assert ads.reason == "MirrorOverCap"  # type: ignore[attr-defined]
    assert "over the mirror cap of 20" in ads.message  # type: ignore[attr-defined]
    history = [h.reason for h in sim.trains[train].status.history]
    assert "MirrorOverCap" in history
    told = [n for name, n in sim.notices if name == train and n.reason == "MirrorOverCap"]
    assert told
    assert told[0].notify
    assert told[0].message.startswith("@bob:")
    sim.run(30)
    assert len(sim.trains) == 1
    [pending] = [c for c in sim.flavors["ads"].status.conditions if c.type == "PendingChanges"]
    assert pending.reason == "NotDeployed", "not AwaitingTrain: no train forms for it again"
    assert f"train {train} took revision" in pending.message
    assert "MirrorOverCap: " in pending.message
    assert "mirror cap of 20" in pending.message


def test_many_cars_over_the_mirror_cap_are_one_entry_not_one_each() -> None:
    """A platform-wide change that breaks a rule in every flavor: one history entry, Event
    and message for all (one each grew the train's status past what the API server takes,
    and buried the engineer); every car's status still says why."""
    sim = Sim(settings(ALWAYS_OPEN + "traffic: {mirrorCapPercent: 20}\n"))
    over = spec("v1", shadow={"model": {"version": "v2"}, "mirrorPercent": 30})
    flavors = [f"ads-{i}" for i in range(50)]
    for name in flavors:
        sim.apply_flavor(name, over)
    sim.apply_flavor("feed", spec("v1"))
    sim.run(40)
    train = sim.only_train()
    status = sim.trains[train].status
    assert [h.reason for h in status.history].count("MirrorOverCap") == 1
    [entry] = [h for h in status.history if h.reason == "MirrorOverCap"]
    assert "50 cars break runbook rules" in (entry.message or "")
    told = [n for name, n in sim.notices if name == train and n.reason == "MirrorOverCap"]
    assert len(told) == 1
    for name in flavors:
        assert car_status(sim, train, name).reason == "MirrorOverCap"  # type: ignore[attr-defined]


def test_a_shadow_without_a_router_fails_the_car() -> None:
    sim = Sim(settings(ALWAYS_OPEN + "traffic: {router: none}\n"))
    sim.apply_flavor("ads", spec("v1", shadow={"model": {"version": "v2"}, "mirrorPercent": 10}))
    sim.run(40)
    train = sim.only_train()
    assert sim.phase(train) == Phase.FAILED
    assert sim.trains[train].status.cars[0].reason == "ShadowWithoutRouter"


def test_a_note_in_the_history_is_not_an_entry_into_the_phase() -> None:
    status = TrainStatus(
        history=[
            HistoryEntry(phase=Phase.VERIFYING, at=AT, reason="StagingAvailable"),
            HistoryEntry(phase=Phase.VERIFYING, at=AT.replace(hour=21), reason="MirrorOverCap"),
        ]
    )
    assert since(status, Phase.VERIFYING) == AT


# --- an approval covers one staging ----------------------------------------


def test_an_approval_is_voided_when_the_window_closes() -> None:
    window = """
timeouts: {stagingTimeout: 2m, verifyFor: 30s, promotionLeadTime: 5h, promotionTimeout: 2m}
runtimes: {scikit-learn-2022-10: repo/sklearn:1}
"""
    sim = Sim(settings(window))  # Monday noon in Los Angeles; the window closes at 16:00
    sim.apply_flavor("ads", spec("v1"))
    sim.run(60)
    train = sim.only_train()
    assert sim.phase(train) == Phase.AWAITING_APPROVAL
    sim.approve(train, by="carol")
    sim.run(60)
    assert sim.trains[train].status.reason == "WaitingForPromotionWindow"
    sim.run(4 * 3600, tick=600)
    status = sim.trains[train].status
    assert status.phase == Phase.QUEUED
    assert [h.reason for h in status.history][-2:] == ["WindowClosed", "ApprovalVoided"]
    told = [n for name, n in sim.notices if name == train and n.reason == "ApprovalVoided"]
    assert told[0].notify
    assert "new approval is needed" in told[0].message


def test_rounds_count_each_time_a_train_is_queued() -> None:
    entries = [
        (Phase.QUEUED, "Created"),
        (Phase.STAGING, "Departed"),
        (Phase.AWAITING_APPROVAL, "Verified"),
        (Phase.QUEUED, "WindowClosed"),
        (Phase.QUEUED, "ApprovalVoided"),
        (Phase.STAGING, "Departed"),
    ]
    history = [HistoryEntry(phase=p, at=AT, reason=r) for p, r in entries]
    assert rounds(TrainStatus(history=history[:3])) == 1
    assert rounds(TrainStatus(history=history[:4])) == 2
    assert rounds(TrainStatus(history=history)) == 2


def test_a_signed_approval_names_the_round_it_was_given_in() -> None:
    stamp = Stamp(names.APPROVED, "ns", "t", "uid", "carol", (), AT, round=2)
    record = sign(stamp, b"key")
    got = verify(record, b"key", annotation=names.APPROVED, namespace="ns", train="t", uid="uid")
    assert got is not None
    assert got.round == 2


def test_the_kube_layer_voids_an_approval_from_an_earlier_round() -> None:
    from adroit.kube.read import train_view

    key = b"key"
    stamp = Stamp(names.APPROVED, "ns", "t", "uid", "carol", (), AT, round=1)
    history = [
        {"phase": p, "at": "2026-11-23T20:00:00Z", "reason": r}
        for p, r in (("Queued", "Created"), ("Staging", "Departed"), ("Queued", "WindowClosed"))
    ]
    item = {
        "metadata": {
            "name": "t",
            "namespace": "ns",
            "uid": "uid",
            "resourceVersion": "1",
            "creationTimestamp": "2026-11-23T20:00:00Z",
            "annotations": {
                names.APPROVED: "true",
                names.RECORDS[names.APPROVED]: sign(stamp, key),
            },
        },
        "spec": {"engineer": "bob", "cars": [{"flavor": "ads", "revision": "abc"}]},
        "status": {"phase": "Staging", "history": history},
    }
    item["status"]["history"] = history[:2]  # type: ignore[index]
    assert train_view(item, key).approval is not None, "round 1: the approval holds"
    item["status"]["history"] = history  # type: ignore[index]
    view = train_view(item, key)
    assert view.approval is None
    assert view.approval_problem_reason == "ApprovalVoided"
    assert "approve again" in (view.approval_problem or "").lower()


# --- separation of duties over every author --------------------------------


def test_a_trusted_writer_names_the_author() -> None:
    claimed = {names.AUTHOR: "carol"}
    assert write_author(ARGOCD, {}, claimed, [ARGOCD]).author == "carol"
    assert write_author(ARGOCD, {}, {}, [ARGOCD]).author == ARGOCD
    refused = write_author("bob", {}, claimed, [ARGOCD])
    assert "bob is not one" in (refused.refusal or "")
    unchanged = write_author("bob", claimed, claimed, [ARGOCD])
    assert (unchanged.author, unchanged.refusal) == ("bob", None)


def test_an_author_no_train_can_record_is_refused_at_the_door() -> None:
    """A train records authors in at most 253 characters: a longer one would make the
    operator's own train invalid, and every train after it wait."""
    robot = "system:serviceaccount:adroit:" + "x" * 230
    assert "your username is 259 characters long" in (write_author(robot, {}, {}, []).refusal or "")
    claimed = {names.AUTHOR: "c" * 254}
    says = write_author(ARGOCD, {}, claimed, [ARGOCD]).refusal or ""
    assert f"{names.AUTHOR} is 254 characters long" in says
    assert write_author("x" * 253, {}, {}, []).refusal is None


def test_every_author_since_the_revision_production_runs() -> None:
    text = None
    for revision, author in (("r1", "bob"), ("r2", "carol"), ("r3", "dave"), ("r4", "bob")):
        text = with_change(text, revision, author)
    history = read_history(text)
    assert authors_since(history, "r2") == ["dave", "bob"]
    assert authors_since(history, None) == ["bob", "carol", "dave"]
    assert authors_since(history, "unknown") == ["bob", "carol", "dave"]
    assert read_history("not json") == ()


def test_a_formed_car_names_every_author_since_production() -> None:
    sim = Sim()
    ship(sim, "ads", spec("v1"))
    from adroit.plan.revision import flavor_revision

    changes = []
    for version, author in (("v1", "bob"), ("v2", "carol"), ("v3", "bob")):
        changes.append((flavor_revision(spec(version)), author))
    sim.apply_flavor("ads", spec("v3"), author="bob")
    from dataclasses import replace

    sim.flavors["ads"] = replace(sim.flavors["ads"], changes=tuple(changes))
    sim.run(5)
    car = sim.trains[latest(sim)].spec.cars[0]
    assert car.authors == ["carol", "bob"]


def test_an_earlier_author_may_not_approve() -> None:
    spec_ = TrainSpec(
        engineer="bob",
        cars=[Car(flavor="ads", revision="abc", author="bob", authors=["carol", "bob"])],
    )
    request = Request(
        annotation=names.APPROVED,
        value="true",
        user="carol",
        train="t",
        phase=Phase.AWAITING_APPROVAL,
        spec=spec_,
        created_by=None,
        may_approve=True,
        separation_of_duties=True,
    )
    why = refusal(request)
    assert "carol made the change" in (why or "")
