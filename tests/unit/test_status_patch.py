"""A status write sends what changed: a long list that changed in place, element by element."""

from typing import Any

from adroit.kube.act import BY_ELEMENT, merge_patch, status_json_patch


def json_patch(current: dict[str, Any], desired: dict[str, Any]) -> list[dict[str, Any]] | None:
    """As patch_status chooses: from the members the merge patch found changed."""
    return status_json_patch(current, desired, merge_patch(current, desired) or {})


def cars(n: int, **changed: str) -> list[dict[str, Any]]:
    return [{"flavor": f"f{i}", "staging": changed.get(f"f{i}", "Applying")} for i in range(n)]


def test_a_long_list_changed_in_place_is_sent_by_its_changed_elements() -> None:
    current = {"phase": "Staging", "deadline": "2026-11-28T10:00:00Z", "cars": cars(2000)}
    desired = {"phase": "Verifying", "cars": cars(2000, f7="Verified", f1999="Failed")}
    assert json_patch(current, desired) == [
        {"op": "remove", "path": "/status/deadline"},
        {"op": "add", "path": "/status/phase", "value": "Verifying"},
        {
            "op": "replace",
            "path": "/status/cars/7",
            "value": {"flavor": "f7", "staging": "Verified"},
        },
        {
            "op": "replace",
            "path": "/status/cars/1999",
            "value": {"flavor": "f1999", "staging": "Failed"},
        },
    ]
    # The merge patch would have carried all 2,000 cars.
    assert len(merge_patch(current, desired)["cars"]) == 2000


def test_what_the_merge_patch_says_as_well_is_left_to_it() -> None:
    short = BY_ELEMENT - 1
    assert json_patch({"cars": cars(short)}, {"cars": cars(short, f1="Failed")}) is None
    grown = {"cars": cars(BY_ELEMENT + 1)}
    assert json_patch({"cars": cars(BY_ELEMENT)}, grown) is None
    assert json_patch({"phase": "Staging"}, {"phase": "Verifying"}) is None
    # A phase that moves every car: the list whole is fewer bytes than a patch per car.
    every = {f"f{i}": "Verified" for i in range(BY_ELEMENT // 2, BY_ELEMENT)}
    assert json_patch({"cars": cars(BY_ELEMENT)}, {"cars": cars(BY_ELEMENT, **every)}) is not None
    every["f0"] = "Verified"
    assert json_patch({"cars": cars(BY_ELEMENT)}, {"cars": cars(BY_ELEMENT, **every)}) is None


def test_a_member_name_is_escaped_as_a_json_pointer() -> None:
    current = {"a/b~c": 1, "cars": cars(BY_ELEMENT)}
    desired = {"a/b~c": 2, "cars": cars(BY_ELEMENT, f0="Verified")}
    paths = [op["path"] for op in json_patch(current, desired) or []]
    assert paths == ["/status/a~1b~0c", "/status/cars/0"]
