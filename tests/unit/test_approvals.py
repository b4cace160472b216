"""Signed approval records and who may approve (SPEC section 4), as pure functions."""

from datetime import UTC, datetime

import pytest

from adroit.api import names
from adroit.api.train import Phase, TrainSpec
from adroit.plan.approvals import Request, Stamp, refusal, sign, verify
from tests.unit.sim import spec

KEY = b"k" * 32
AT = datetime(2026, 11, 23, 17, 20, tzinfo=UTC)
STAMP = Stamp(names.APPROVED, "adroit", "train-1", "uid-1", "carol", ("adroit:approvers",), AT)


def check(record: str | None, key: bytes = KEY, **where: str) -> Stamp | None:
    place = {
        "annotation": names.APPROVED,
        "namespace": "adroit",
        "train": "train-1",
        "uid": "uid-1",
    }
    return verify(record, key, **{**place, **where})


def test_a_signed_record_verifies_on_its_train() -> None:
    assert check(sign(STAMP, KEY)) == STAMP


@pytest.mark.parametrize(
    "where",
    [
        {"uid": "uid-2"},
        {"train": "train-2"},
        {"namespace": "other"},
        {"annotation": names.OVERRIDE_WINDOW},
    ],
)
def test_a_record_binds_to_its_train_and_annotation(where: dict[str, str]) -> None:
    assert check(sign(STAMP, KEY), **where) is None


def test_a_forged_or_tampered_record_is_not_honoured() -> None:
    record = sign(STAMP, KEY)
    assert check(record, key=b"x" * 32) is None, "signed with another key"
    payload, mac = record.split(".")
    forged = sign(Stamp(**{**STAMP.__dict__, "user": "mallory"}), b"guess" * 8)
    assert check(forged.split(".")[0] + "." + mac) is None, "someone else's payload"
    assert check(payload + ".") is None
    for junk in (None, "", "true", "a.b.c", "!!!.???"):
        assert check(junk) is None


TRAIN = TrainSpec.model_validate(
    {
        "engineer": "bob",
        "cars": [
            {"flavor": "ads", "revision": "abc", "spec": spec("v1").to_wire(), "author": "dave"}
        ],
    }
)


def request(**changes: object) -> Request:
    base = {
        "annotation": names.APPROVED,
        "value": "true",
        "user": "carol",
        "train": "t",
        "phase": Phase.AWAITING_APPROVAL,
        "spec": TRAIN,
        "created_by": "operator",
        "may_approve": True,
        "separation_of_duties": True,
    }
    return Request(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({}, None),
        ({"value": None}, None),
        ({"value": "maybe"}, 'must be "true" (got "maybe")'),
        ({"may_approve": False}, "carol may not approve trains in this namespace"),
        ({"user": "bob"}, "bob drives train t and may not approve it (separation of duties)"),
        ({"user": "operator"}, "drives train t"),
        ({"user": "dave"}, "dave made the change train t carries for ads"),
        ({"user": "dave", "separation_of_duties": False}, None),
        ({"user": "d" * 254}, "your username is 254 characters long"),
        ({"phase": Phase.STAGING}, "train t is Staging, not AwaitingApproval"),
        ({"phase": None}, "train t is Queued, not AwaitingApproval"),
        ({"phase": Phase.DEPLOYED}, "train t already ended (Deployed)"),
        ({"spec": TRAIN.model_copy(update={"runtime_release": True})}, "needs no approval"),
        ({"annotation": names.OVERRIDE_WINDOW, "phase": Phase.QUEUED}, None),
        (
            {"annotation": names.OVERRIDE_WINDOW, "may_approve": False},
            "may not override the deploy window for trains",
        ),
        ({"annotation": names.ABORT, "may_approve": False, "user": "bob"}, None),
        ({"annotation": names.ABORT, "phase": Phase.ABORTED}, "already ended"),
    ],
)
def test_who_may_approve(changes: dict[str, object], says: str | None) -> None:
    why = refusal(request(**changes))
    if says is None:
        assert why is None
    else:
        assert why is not None
        assert says in why
