"""Trains that form by themselves: size, snapshots, reverts, removals, pruning."""

import json
from datetime import timedelta

from adroit.api.flavor import FlavorStatus
from adroit.api.train import (
    MAX_CARS,
    SPEC_BYTES,
    STATUS_BYTES,
    CarState,
    CarStatus,
    Phase,
    TrainSpec,
    TrainStatus,
    wire_bytes,
)
from adroit.plan.formation import form_train, prune, snapshot_matches, snapshot_spec
from adroit.plan.report import CAR_MESSAGE, within_room
from adroit.plan.stages import Stage
from adroit.plan.world import FlavorView, TrainView, World
from tests.unit.sim import ALWAYS_OPEN, MONDAY_NOON, Sim, settings, spec
from tests.unit.test_trains import deployed


def test_two_thousand_changes_form_one_train_and_the_next_change_waits() -> None:
    config = settings()
    flavors = {
        f"flavor-{i:04d}": FlavorView(
            name=f"flavor-{i:04d}", spec=spec(f"v{i}"), generation=1, status=FlavorStatus()
        )
        for i in range(MAX_CARS + 1)
    }
    formation = form_train(World(now=MONDAY_NOON, flavors=flavors), config)
    assert formation is not None
    cars = formation.train["spec"]["cars"]
    assert len(cars) == MAX_CARS == 2000
    assert all("spec" not in c and c["revision"] for c in cars), "cars name their snapshots"
    assert len(formation.revisions) == MAX_CARS
    revision = formation.revisions[0]
    assert revision["apiVersion"] == "apps/v1"
    assert revision["kind"] == "ControllerRevision"
    assert revision["revision"] == 1
    car = cars[0]
    assert revision["metadata"]["name"] == f"{car['flavor']}-{car['revision']}"
    assert revision["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "adroit",
        "adroit.dev/flavor": car["flavor"],
        "adroit.dev/revision": car["revision"],
    }
    kept = snapshot_spec(car["revision"], revision["data"])
    assert kept is not None
    assert snapshot_matches(kept, car["revision"])
    assert snapshot_spec("00000000", revision["data"]) is None, "a snapshot of another revision"
    TrainSpec.model_validate(formation.train["spec"])  # within the schema
    size = len(json.dumps(formation.train))
    assert size < 400_000, f"the largest train is {size} bytes"

    left = set(flavors) - {c["flavor"] for c in cars}
    assert len(left) == 1
    on = TrainView(
        name=formation.name,
        created_at=MONDAY_NOON,
        spec=TrainSpec.model_validate(formation.train["spec"]),
        status=TrainStatus(phase=Phase.STAGING),
    )
    world = World(now=MONDAY_NOON, flavors=flavors, trains=(on,))
    assert form_train(world, config) is None, "nothing forms while a train is on the tracks"
    done = TrainView(
        name=on.name, created_at=on.created_at, spec=on.spec, status=TrainStatus(phase=Phase.FAILED)
    )
    later = form_train(World(now=MONDAY_NOON, flavors=flavors, trains=(done,)), config)
    assert later is not None
    assert [c["flavor"] for c in later.train["spec"]["cars"]] == sorted(left)


def test_an_author_written_past_the_webhook_that_no_train_can_record_stops_no_train() -> None:
    """With the webhook away (its failurePolicy for Flavors is Ignore), a hand-written
    adroit.dev/changed-by can be longer than a train records: that name is left out, and the
    train still forms with every change."""
    long = "x" * 300
    flavors = {
        name: FlavorView(
            name=name,
            spec=spec("v1"),
            generation=1,
            status=FlavorStatus(),
            author=author,
            changes=(("r0", long), ("r1", "bob")),
        )
        for name, author in (("ads", long), ("search", "carol"))
    }
    formation = form_train(World(now=MONDAY_NOON, flavors=flavors), settings())
    assert formation is not None
    train = TrainSpec.model_validate(formation.train["spec"])  # the API server takes it
    cars = {c.flavor: c for c in train.cars}
    assert set(cars) == {"ads", "search"}
    assert (cars["ads"].author, cars["ads"].authors) == (None, ["bob"])
    assert cars["search"].authors == ["bob", "carol"]
    assert len(train.engineer) <= 253


def test_a_revert_ships() -> None:
    sim = Sim()
    deployed(sim, "ads", "v1")
    second = deployed(sim, "ads", "v2")
    assert sim.running(Stage.PRODUCTION, "ads") == "v2"
    sim.apply_flavor("ads", spec("v1"))
    sim.run(40)
    back = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    assert back != second, "going back to v1 forms a train"
    assert sim.phase(back) == Phase.AWAITING_APPROVAL, "with approval like any change"
    sim.approve(back)
    sim.run(10)
    assert sim.phase(back) == Phase.DEPLOYED
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"


def test_a_failed_revision_waits_but_a_change_back_to_a_good_one_rides() -> None:
    sim = Sim()
    deployed(sim, "ads", "v1")
    sim.broken.add("ads")
    sim.apply_flavor("ads", spec("v2"))
    sim.run(200)
    failed = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    assert sim.phase(failed) == Phase.ROLLED_BACK
    sim.broken.clear()
    sim.run(60)
    assert max(sim.trains, key=lambda n: sim.trains[n].created_at) == failed
    pending = {c.type: c for c in sim.flavors["ads"].status.conditions}["PendingChanges"]
    assert pending.reason == "NotDeployed"
    sim.apply_flavor("ads", spec("v3"))
    sim.run(5)
    assert max(sim.trains, key=lambda n: sim.trains[n].created_at) != failed


def test_an_aborted_removal_says_how_to_finish_or_cancel() -> None:
    sim = Sim()
    deployed(sim)
    sim.delete_flavor("ads")
    sim.run(40)
    removal = max(sim.trains, key=lambda n: sim.trains[n].created_at)
    assert sim.trains[removal].spec.cars[0].remove
    pending = {c.type: c for c in sim.flavors["ads"].status.conditions}["PendingChanges"]
    assert pending.reason == "RemovalOnTrain"
    sim.annotate(removal, abort=True, abort_by="alice")
    sim.run(60)
    assert sim.phase(removal) == Phase.ABORTED
    assert max(sim.trains, key=lambda n: sim.trains[n].created_at) == removal, "no retry"
    assert "ads" in sim.flavors, "the finalizer still holds it: production runs it"
    pending = {c.type: c for c in sim.flavors["ads"].status.conditions}["PendingChanges"]
    assert (pending.status, pending.reason) == ("True", "RemovalNotDeployed")
    assert f"train {removal}" in pending.message
    assert "{flavor: ads, remove: true}" in pending.message, "how to finish"
    assert "adroit.dev/finalizer" in pending.message, "how to cancel"
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"

    sim.create_train(  # finishing it as the status says
        "remove-ads",
        TrainSpec.model_validate({"engineer": "dan", "cars": [{"flavor": "ads", "remove": True}]}),
    )
    sim.run(40)
    sim.approve("remove-ads")
    sim.run(10)
    assert sim.phase("remove-ads") == Phase.DEPLOYED
    assert "ads" not in sim.flavors, "the finalizer is released"


def test_finished_trains_beyond_the_history_limit_are_pruned_with_their_snapshots() -> None:
    sim = Sim(settings(ALWAYS_OPEN + "trainHistoryLimit: 2\n"))
    trains = [deployed(sim, "ads", f"v{i}") for i in range(1, 5)]
    assert sorted(sim.trains) == sorted(trains[-2:]), "the two latest are kept"
    kept = {f"ads-{c.revision}" for t in trains[-2:] for c in sim.trains[t].spec.cars}
    assert set(sim.revisions) == kept, "snapshots of pruned trains go with them"


def test_prune_never_takes_an_unfinished_train() -> None:
    config = settings(ALWAYS_OPEN + "trainHistoryLimit: 1\n")
    cars = [{"flavor": "a", "revision": "abc", "spec": spec("a").to_wire()}]
    train_spec = TrainSpec.model_validate({"engineer": "dan", "cars": cars})

    def train(name: str, phase: Phase, age: int) -> TrainView:
        return TrainView(
            name=name,
            created_at=MONDAY_NOON - timedelta(hours=age),
            spec=train_spec,
            status=TrainStatus(phase=phase),
        )

    world = World(
        now=MONDAY_NOON,
        trains=(
            train("old-queued", Phase.QUEUED, 9),
            train("old", Phase.DEPLOYED, 8),
            train("older", Phase.ABORTED, 10),
            train("new", Phase.ROLLED_BACK, 1),
        ),
        snapshots=frozenset({"a-abc", "b-def"}),
    )
    pruning = prune(world, config)
    assert pruning.trains == ("older", "old")
    assert pruning.revisions == ("b-def",)


def test_prune_keeps_the_snapshot_of_every_flavors_current_spec() -> None:
    """A revert to v1 forms with the snapshot a-<v1> that already exists, while the train
    that carried v1 before is pruned in the same pass: the snapshot must stay."""
    config = settings(ALWAYS_OPEN + "trainHistoryLimit: 1\n")
    current = FlavorView(name="a", spec=spec("v1"), generation=3, status=FlavorStatus())
    mine = f"a-{current.revision}"
    world = World(now=MONDAY_NOON, flavors={"a": current}, snapshots=frozenset({mine, "a-old"}))
    assert prune(world, config).revisions == ("a-old",)


def test_a_revision_that_ended_badly_stays_remembered_beyond_the_history_limit() -> None:
    """The train where a revision was rolled back is kept while the flavor still asks for
    that revision: pruned, it would let the revision ride again by itself."""
    sim = Sim(settings(ALWAYS_OPEN + "trainHistoryLimit: 1\n"))
    sim.broken.add("bad")
    sim.apply_flavor("bad", spec("v1"))
    sim.run(180)
    [failed] = sim.trains
    assert sim.phase(failed) == Phase.ROLLED_BACK
    for version in ("v1", "v2"):
        deployed(sim, "other", version)
    assert failed in sim.trains, "kept beyond the limit: it is what `bad` waits for"
    assert [t for t in sim.trains if "bad" in {c.flavor for c in sim.trains[t].spec.cars}] == [
        failed
    ], "no train formed for the same revision again"
    pending = next(c for c in sim.flavors["bad"].status.conditions if c.type == "PendingChanges")
    assert pending.reason == "NotDeployed"
    sim.apply_flavor("bad", spec("v2"))  # a new revision: the memory may go
    sim.broken.discard("bad")
    sim.run(40)
    deployed(sim, "other", "v3")
    assert failed not in sim.trains


# A serving image as long as a private registry's, with a digest (the catalog allows 512).
LONG_IMAGE = "registry.ml-platform.internal.example.com/serving/runtimes/" + (
    "scikit-learn-2022-10-with-custom-preprocessing-and-feature-store-client@sha256:" + "a" * 64
)
CI = "system:serviceaccount:platform-gitops:kustomize-controller-for-model-serving"


def long_flavors(count: int) -> dict[str, FlavorView]:
    """Changes whose cars are long: long names, a long image, three authors each."""
    views = {}
    for i in range(count):
        name = f"ads-pctr-recommendation-ranking-model-eu-west-{i:05d}"
        views[name] = FlavorView(
            name=name,
            spec=spec(f"v{i}"),
            generation=1,
            status=FlavorStatus(),
            author=CI,
            changes=(("r1", "alice.anderson@example.com"), ("r2", "bob.brown@example.com")),
        )
    return views


def test_long_cars_form_a_train_whose_spec_leaves_its_status_room() -> None:
    """A Train is one etcd object (1.5 MiB with everything): 2,000 long cars do not fit
    beside their status. The train takes the earliest changes that fit in its spec's share,
    and the rest board the next train: no train the API server would refuse, nor one whose
    status could no longer be written."""
    config = settings(ALWAYS_OPEN.replace("repo/sklearn:1", LONG_IMAGE))
    flavors = long_flavors(MAX_CARS)
    formation = form_train(World(now=MONDAY_NOON, flavors=flavors), config)
    assert formation is not None
    cars = formation.train["spec"]["cars"]
    assert cars[0]["image"] == LONG_IMAGE
    assert len(cars[0]["authors"]) == 3
    size = wire_bytes(formation.train["spec"])
    assert size <= SPEC_BYTES
    assert 500 < len(cars) < MAX_CARS, f"{len(cars)} cars"
    assert size + wire_bytes(cars[0]) > SPEC_BYTES - 1000, "it takes as many as fit"
    assert len(formation.revisions) == len(cars)

    done = TrainView(
        name=formation.name,
        created_at=MONDAY_NOON,
        spec=TrainSpec.model_validate(formation.train["spec"]),
        status=TrainStatus(phase=Phase.FAILED),  # its cars do not ride again by themselves
    )
    later = form_train(World(now=MONDAY_NOON, flavors=flavors, trains=(done,)), config)
    assert later is not None
    rest = {c["flavor"] for c in later.train["spec"]["cars"]}
    assert rest == set(flavors) - {c["flavor"] for c in cars}


def test_every_car_refused_with_a_long_message_leaves_the_status_writable() -> None:
    """A LimitRange that refuses every Deployment fails 2,000 cars at once, each with the
    API server's message: the messages are shortened, then the last cars keep only their
    reason, so that the status stays within its share and the train can still end."""
    flavors = [f"ads-pctr-recommendation-ranking-model-eu-west-{i:05d}" for i in range(MAX_CARS)]
    refusal = (
        'Deployment.apps "{}" is invalid: spec.template.spec.containers[0].resources.limits.'
        'memory: Invalid value: "64Gi": must be less than or equal to memory limit of 32Gi '
    )
    status = TrainStatus(
        phase=Phase.ROLLED_BACK,
        message="car x in staging: the API server refused it",
        cars=[
            CarStatus(
                flavor=f,
                staging=CarState.FAILED,
                reason="Failed",
                message=(refusal.format(f) * 8),
            )
            for f in flavors
        ],
    )
    assert wire_bytes(status.to_wire()) > 2 * STATUS_BYTES
    kept = within_room(status)
    assert wire_bytes(kept.to_wire()) <= STATUS_BYTES
    assert [c.flavor for c in kept.cars] == flavors
    assert all(c.reason == "Failed" and c.staging == CarState.FAILED for c in kept.cars)
    first, last = kept.cars[0], kept.cars[-1]
    assert first.message is not None
    assert first.message.startswith(refusal.format(flavors[0])[:100])
    assert len(first.message) == CAR_MESSAGE
    assert first.message.endswith("…")
    assert last.message is None
    assert kept.message == status.message

    short = status.model_copy(update={"cars": status.cars[:10]})
    assert within_room(short) is short, "a status with room is left as it is"
