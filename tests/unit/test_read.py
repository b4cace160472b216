"""A Train's status is read again on every change: only the cars that changed are read anew."""

from typing import Any

import pytest
from pydantic import ValidationError

from adroit.api.train import TrainStatus
from adroit.kube.read import train_status


def status(cars: list[dict[str, Any]], phase: str = "Staging") -> dict[str, Any]:
    return {"phase": phase, "carCount": len(cars), "cars": cars}


def car(i: int, staging: str = "Applying", **more: Any) -> dict[str, Any]:
    return {"flavor": f"flavor-{i:04d}", "staging": staging, **more}


def test_a_new_status_reads_only_the_cars_that_changed_and_reads_the_same() -> None:
    first = status([car(i) for i in range(2000)])
    before, cars = train_status(first)
    assert before == TrainStatus.model_validate(first)

    changed = [dict(c) for c in first["cars"]]  # decoded again, as from the next watch event
    changed[7] = car(7, "Verified", reason="Healthy", message="1/1 Available")
    second = status(changed, "Verifying")
    after, cars = train_status(second, cars)

    assert after == TrainStatus.model_validate(second)
    assert after.phase == "Verifying"
    assert after.cars[7].staging == "Verified"
    assert after.cars[6] is before.cars[6]  # the same car: not read again
    assert after.cars[7] is not before.cars[7]


def test_cars_added_removed_or_moved_are_read_as_sent() -> None:
    _, cars = train_status(status([car(i) for i in range(5)]))
    for sent in (
        [car(i) for i in range(7)],
        [car(i) for i in range(3)],
        [car(i) for i in (2, 1, 0)],
        [],
    ):
        read, cars = train_status(status(sent), cars)
        assert read == TrainStatus.model_validate(status(sent))


def test_a_changed_car_that_cannot_be_read_is_refused_as_a_whole_status_would_be() -> None:
    _, cars = train_status(status([car(i) for i in range(3)]))
    with pytest.raises(ValidationError):
        train_status(status([car(0), car(1, "Flying"), car(2)]), cars)
