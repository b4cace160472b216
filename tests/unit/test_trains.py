"""Every rule of a release train, on the pure planner (SPEC section 3)."""

from datetime import timedelta

from adroit.api.train import CarState, Phase, TrainSpec, repeated_flavors
from adroit.plan.render import Stage
from tests.kube import FULL_RIDE
from tests.unit.sim import ALWAYS_OPEN, Sim, settings, spec


def deployed(sim: Sim, name: str = "ads", version: str = "v1") -> str:
    """Put `name` at `version` into production through an approved train."""
    sim.apply_flavor(name, spec(version))
    sim.run(40)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    sim.approve(train)
    sim.run(10)
    assert sim.phase(train) == Phase.DEPLOYED, sim.trains[train].status
    return train


def phases(sim: Sim, train: str) -> list[str]:
    return [h.phase for h in sim.trains[train].status.history]


def test_a_flavor_change_rides_a_train_to_production() -> None:
    sim = Sim()
    sim.apply_flavor("ads", spec("v1"))
    sim.run(40)
    train = sim.only_train()
    assert sim.phase(train) == Phase.AWAITING_APPROVAL
    assert sim.running(Stage.STAGING, "ads") == "v1"
    assert sim.running(Stage.PRODUCTION, "ads") is None
    sim.run(600)
    assert sim.phase(train) == Phase.AWAITING_APPROVAL, "nothing reaches production unapproved"

    sim.approve(train, by="carol")
    sim.run(10)
    assert phases(sim, train) == FULL_RIDE
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"
    status = sim.trains[train].status
    assert status.approval is not None
    assert status.approval.by == "carol"
    assert status.cars[0].production == CarState.DEPLOYED
    assert sim.flavors["ads"].status.production is not None


def test_engineer_is_told_when_approval_is_needed_and_at_the_end() -> None:
    sim = Sim()
    train = deployed(sim)
    told = [n.message for name, n in sim.notices if name == train and n.notify]
    assert len(told) == 2
    assert all(m.startswith("@bob:") for m in told)
    assert "AwaitingApproval" in told[0]
    assert "adroit.dev/approved=true" in told[0]
    assert "Deployed" in told[1]
    reasons = [n.reason for name, n in sim.notices if name == train]
    assert reasons == [
        "Created",
        "Departed",
        "StagingAvailable",
        "Verified",
        "Approved",
        "Promoted",
    ]


def test_verification_lasts_verify_for() -> None:
    sim = Sim()
    sim.apply_flavor("ads", spec("v1"))
    sim.run(20)  # verifyFor is 30s
    assert sim.phase(sim.only_train()) == Phase.VERIFYING
    assert "healthy for" in (sim.trains[sim.only_train()].status.message or "")
    sim.run(15)
    assert sim.phase(sim.only_train()) == Phase.AWAITING_APPROVAL


def test_one_train_on_the_tracks_and_changes_board_the_next() -> None:
    sim = Sim()
    sim.apply_flavor("ads", spec("v1"))
    sim.run(40)
    first = sim.only_train()
    sim.apply_flavor("search", spec("s1"))
    sim.apply_flavor("ads", spec("v2"))
    sim.run(60)
    assert list(sim.trains) == [first], "no train forms while one is on the tracks"
    assert sim.running(Stage.STAGING, "search") is None, "staging is left alone"
    sim.approve(first)
    sim.run(5)
    assert sim.phase(first) == Phase.DEPLOYED
    assert sim.running(Stage.PRODUCTION, "ads") == "v1", "the train carries what it formed with"
    second = next(n for n in sim.trains if n != first)
    assert {c.flavor for c in sim.trains[second].spec.cars} == {"ads", "search"}


def test_first_created_first_served() -> None:
    sim = Sim()
    sim.apply_flavor("ads", spec("v1"))
    sim.run(40)
    on = sim.only_train()
    cars = [{"flavor": "b", "revision": "abc", "spec": spec("b1").to_wire()}]
    sim.create_train("zz-early", TrainSpec.model_validate({"engineer": "dan", "cars": cars}))
    sim.now += timedelta(seconds=1)
    cars = [{"flavor": "c", "revision": "abd", "spec": spec("c1").to_wire()}]
    sim.create_train("aa-late", TrainSpec.model_validate({"engineer": "eve", "cars": cars}))
    sim.run(5)
    assert sim.trains["zz-early"].status.reason == "WaitingForTrack"
    assert sim.trains["aa-late"].status.reason in ("WaitingForTrack", "WaitingInQueue")
    sim.approve(on)
    sim.run(5)
    assert sim.phase("zz-early") in (Phase.STAGING, Phase.VERIFYING)
    assert sim.phase("aa-late") == Phase.QUEUED
    assert sim.trains["aa-late"].status.message == "train zz-early is on the tracks"


def test_broken_staging_is_reverted_to_what_production_runs() -> None:
    sim = Sim()
    deployed(sim, version="v1")
    sim.broken.add("ads")
    sim.apply_flavor("ads", spec("v2"))
    sim.run(60)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    assert sim.phase(train) == Phase.STAGING
    sim.run(90)  # past stagingTimeout (2m)
    status = sim.trains[train].status
    assert status.phase == Phase.ROLLED_BACK
    assert status.reason == "StagingFailed"
    assert "car ads in staging: not Available within 120s" in (status.message or "")
    assert status.cars[0].staging == CarState.FAILED
    sim.broken.discard("ads")  # what production runs is healthy
    sim.run(5)
    assert sim.running(Stage.STAGING, "ads") == "v1", "staging runs what production runs"
    assert sim.running(Stage.PRODUCTION, "ads") == "v1", "production untouched"
    assert len(sim.stage_world(Stage.STAGING).workloads) == 1, "the broken Deployment is gone"
    assert sim.flavors["ads"].status.conditions[0].reason == "NotDeployed"


def test_a_new_flavor_that_breaks_staging_is_removed_from_it() -> None:
    sim = Sim()
    sim.broken.add("ads")
    sim.apply_flavor("ads", spec("v1"))
    sim.run(180)
    assert sim.phase(sim.only_train()) == Phase.ROLLED_BACK
    assert not sim.objects[Stage.STAGING], "nothing of it stays in staging"
    sim.run(60)
    assert len(sim.trains) == 1, "a rolled-back revision does not ride again by itself"


def test_staging_that_breaks_during_verification_fails_the_train() -> None:
    sim = Sim()
    sim.apply_flavor("ads", spec("v1"))
    sim.run(10)
    train = sim.only_train()
    assert sim.phase(train) == Phase.VERIFYING
    sim.broken.add("ads")
    sim.run(5)
    status = sim.trains[train].status
    assert (status.phase, status.reason) == (Phase.ROLLED_BACK, "BrokeDuringVerification")
    assert not sim.objects[Stage.STAGING]
    verified = next(c for c in status.conditions if c.type == "Verified")
    assert verified.status == "False", "kubectl wait --for=condition=Verified must not pass"


def test_staging_only_flavor_never_reaches_production() -> None:
    sim = Sim()
    sim.apply_flavor("exp", spec("e1", stagingOnly=True))
    sim.run(60)
    train = sim.only_train()
    status = sim.trains[train].status
    assert status.phase == Phase.DEPLOYED
    assert status.reason == "VerifiedStagingOnly"
    assert next(c for c in status.conditions if c.type == "Verified").status == "True"
    assert status.approval is None
    assert (status.cars[0].production, status.cars[0].reason) == (CarState.SKIPPED, "StagingOnly")
    assert not sim.objects[Stage.PRODUCTION]
    assert sim.running(Stage.STAGING, "exp") == "e1"
    sim.run(60)
    assert sim.running(Stage.STAGING, "exp") == "e1", "a deployed staging-only flavor stays"


def test_mixed_train_skips_staging_only_cars_in_production() -> None:
    sim = Sim()
    sim.apply_flavor("exp", spec("e1", stagingOnly=True))
    sim.apply_flavor("ads", spec("v1"))
    sim.run(40)
    train = sim.only_train()
    assert sim.phase(train) == Phase.AWAITING_APPROVAL
    sim.approve(train)
    sim.run(5)
    assert sim.phase(train) == Phase.DEPLOYED
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"
    assert sim.running(Stage.PRODUCTION, "exp") is None


def test_switching_to_staging_only_keeps_production() -> None:
    sim = Sim()
    deployed(sim, version="v1")
    sim.apply_flavor("ads", spec("v2", stagingOnly=True))
    sim.run(60)
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"
    assert sim.running(Stage.STAGING, "ads") == "v2"


def test_runtime_release_needs_no_approval() -> None:
    sim = Sim()
    deployed(sim)
    sim.settings = settings(ALWAYS_OPEN.replace("repo/sklearn:1", "repo/sklearn:2"))
    sim.run(60)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    status = sim.trains[train].status
    assert sim.trains[train].spec.runtime_release
    assert status.phase == Phase.DEPLOYED
    assert status.approval is None
    assert "Promoting" in phases(sim, train)
    routed = sim.stage_world(Stage.PRODUCTION).routed("ads")
    assert routed is not None
    assert routed.release is not None
    assert routed.release.image == "repo/sklearn:2"


def test_abort_reverts_staging() -> None:
    sim = Sim()
    deployed(sim, version="v1")
    sim.apply_flavor("ads", spec("v2"))
    sim.run(40)
    train = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    assert sim.running(Stage.STAGING, "ads") == "v2"
    sim.annotate(train, abort=True, abort_by="alice")
    sim.run(5)
    status = sim.trains[train].status
    assert status.phase == Phase.ABORTED
    assert status.history[-1].by == "alice"
    assert sim.running(Stage.STAGING, "ads") == "v1"
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"


def test_unknown_runtime_fails_the_train_with_advice() -> None:
    sim = Sim()
    sim.apply_flavor(
        "ads", spec("v1", model={"name": "m", "version": "v1", "runtime": "pytorch-2"})
    )
    sim.run(5)
    status = sim.trains[sim.only_train()].status
    assert status.phase == Phase.FAILED
    assert status.reason == "UnknownRuntime"
    assert "runtime pytorch-2 is not in the settings' runtime catalog" in (status.message or "")


def test_deleting_a_flavor_empties_staging_at_once_and_production_through_a_train() -> None:
    sim = Sim()
    deployed(sim)
    sim.delete_flavor("ads")
    sim.step()
    assert not sim.objects[Stage.STAGING], "staging at once"
    sim.run(40)
    removal = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    assert sim.trains[removal].spec.cars[0].remove
    assert sim.phase(removal) == Phase.AWAITING_APPROVAL
    assert "ads" in sim.flavors, "the finalizer holds the flavor while production runs it"
    sim.approve(removal)
    sim.run(5)
    assert sim.phase(removal) == Phase.DEPLOYED
    assert not sim.objects[Stage.PRODUCTION]
    assert "ads" not in sim.flavors, "the finalizer is released"


def test_a_repeated_flavor_is_named_once_and_a_long_list_is_cut() -> None:
    assert repeated_flavors(["a", "b", "c"]) is None
    assert repeated_flavors(["a", "b", "a", "a"]) == (
        "flavor a rides this train more than once; a train carries each flavor at most "
        "once: keep one car per flavor"
    )
    many = repeated_flavors([f"f{i}" for i in range(5)] * 2)
    assert many is not None
    assert many.startswith("flavor f0, f1, f2 and 2 more rides")
