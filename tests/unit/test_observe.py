"""What the operator records on first sight of a Flavor or a Train."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from adroit.api.conditions import ConditionStatus
from adroit.api.flavor import Flavor, FlavorSpec, FlavorStatus, ProductionStatus, StageStatus
from adroit.api.train import Phase, TrainSpec, TrainStatus
from adroit.plan.conditions import set_condition
from adroit.plan.observe import observe_flavor, observe_new_train
from adroit.plan.revision import flavor_revision
from tests.kube import REPO, flavor

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def spec(**changes: object) -> FlavorSpec:
    return FlavorSpec.model_validate(flavor("x", **changes)["spec"])


@pytest.mark.parametrize("path", sorted(Path(REPO, "deploy", "samples").glob("*.yaml")), ids=str)
def test_samples_are_valid_flavors(path: Path) -> None:
    Flavor.model_validate(yaml.safe_load(path.read_text()))


def test_revision_ignores_how_defaults_were_written() -> None:
    implicit = spec()
    explicit = spec(
        stagingOnly=False,
        instances={
            "memoryPerProcMiB": 1500,
            "minProdContainers": 3,
            "procsPerContainer": 1,
            "stagingContainers": 1,
        },
    )
    assert flavor_revision(implicit) == flavor_revision(explicit)


def test_revision_changes_with_what_runs() -> None:
    changed = spec(model={**flavor("x")["spec"]["model"], "version": "other"})
    assert flavor_revision(changed) != flavor_revision(spec())


def test_condition_keeps_its_transition_time_while_status_holds() -> None:
    first = set_condition([], "Ready", ConditionStatus.FALSE, "NotYet", "", now=NOW)
    later = NOW + timedelta(minutes=5)
    same = set_condition(first, "Ready", ConditionStatus.FALSE, "StillNot", "", now=later)
    assert same[0].last_transition_time == NOW
    assert same[0].reason == "StillNot"
    flipped = set_condition(same, "Ready", ConditionStatus.TRUE, "Running", "", now=later)
    assert flipped[0].last_transition_time == later
    assert len(flipped) == 1


def test_a_new_flavor_waits_for_a_train() -> None:
    status = observe_flavor(spec(), 1, FlavorStatus(), now=NOW)
    assert status.observed_generation == 1
    pending = {c.type: c for c in status.conditions}["PendingChanges"]
    assert (pending.status, pending.reason) == (ConditionStatus.TRUE, "AwaitingTrain")


def test_a_flavor_running_in_production_has_nothing_pending() -> None:
    revision = flavor_revision(spec())
    status = observe_flavor(
        spec(), 3, FlavorStatus(production=ProductionStatus(revision=revision)), now=NOW
    )
    pending = {c.type: c for c in status.conditions}["PendingChanges"]
    assert pending.status == ConditionStatus.FALSE


def test_a_staging_only_flavor_is_up_to_date_in_staging() -> None:
    only = spec(stagingOnly=True)
    status = FlavorStatus(staging=StageStatus(revision=flavor_revision(only)))
    pending = {c.type: c for c in observe_flavor(only, 1, status, now=NOW).conditions}
    assert pending["PendingChanges"].status == ConditionStatus.FALSE


def test_observing_twice_changes_nothing() -> None:
    once = observe_flavor(spec(), 1, FlavorStatus(), now=NOW)
    twice = observe_flavor(spec(), 1, once, now=NOW + timedelta(minutes=1))
    assert twice == once


def test_a_new_train_is_queued_once() -> None:
    train = TrainSpec.model_validate(
        {"engineer": "alice", "cars": [{"flavor": "a", "remove": True}]}
    )
    once = observe_new_train(train, 1, TrainStatus(), now=NOW)
    assert once.phase == Phase.QUEUED
    assert once.car_count == 1
    assert [h.reason for h in once.history] == ["Created"]
    assert observe_new_train(train, 1, once, now=NOW + timedelta(minutes=1)) == once
