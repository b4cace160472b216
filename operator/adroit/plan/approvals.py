"""Who may approve a train, and records of it that nobody can forge (SPEC section 4).

Pure: the admission webhook gathers the facts (the request's user, a
SubjectAccessReview's answer, the train as it is) and this module decides.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from adroit.api import names
from adroit.api.train import FINISHED, USERNAME_LIMIT, Phase, TrainSpec, TrainStatus
from adroit.plan.cars import needs_approval

GUARDED = (names.APPROVED, names.OVERRIDE_WINDOW)  # need the verb `approve`
STAMPED = (names.APPROVED, names.OVERRIDE_WINDOW, names.ABORT)  # carry a signed record


@dataclass(frozen=True)
class Stamp:
    """Who set a guarded annotation on which train, and when."""

    annotation: str
    namespace: str
    train: str
    uid: str
    user: str
    groups: tuple[str, ...]
    at: datetime
    # The train's round when it was given (see `rounds`): an approval covers one round.
    round: int = 0


def rounds(status: TrainStatus) -> int:
    """How many times the train has entered Queued: once when created, again each time it
    is sent back at window close. Its staging is redone in each round, and an approval
    given in one round does not cover the next."""
    count, previous = 0, None
    for entry in status.history:
        if entry.phase == Phase.QUEUED and previous != Phase.QUEUED:
            count += 1
        previous = entry.phase
    return count


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(stamp: Stamp, key: bytes) -> str:
    """The record: the stamp and an HMAC-SHA256 of it, bound to one train's UID."""
    payload = json.dumps(
        {
            "a": stamp.annotation,
            "ns": stamp.namespace,
            "train": stamp.train,
            "uid": stamp.uid,
            "user": stamp.user,
            "groups": list(stamp.groups),
            "at": stamp.at.isoformat(),
            "round": stamp.round,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify(
    record: str | None, key: bytes, *, annotation: str, namespace: str, train: str, uid: str
) -> Stamp | None:
    """The stamp in `record` if its signature holds and it was given on this very train."""
    if not record or "." not in record:
        return None
    encoded, mac = record.rsplit(".", 1)
    try:
        payload = _unb64(encoded)
        expected = hmac.new(key, payload, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        data = json.loads(payload)
        stamp = Stamp(
            data["a"],
            data["ns"],
            data["train"],
            data["uid"],
            data["user"],
            tuple(data["groups"]),
            datetime.fromisoformat(data["at"]),
            int(data.get("round", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if (stamp.annotation, stamp.namespace, stamp.train, stamp.uid) != (
        annotation,
        namespace,
        train,
        uid,
    ):
        return None
    return stamp


@dataclass(frozen=True)
class Request:
    """One write that changes a guarded annotation, as the webhook saw it."""

    annotation: str
    value: str | None  # None: the annotation is removed
    user: str
    train: str
    phase: Phase | None
    spec: TrainSpec
    created_by: str | None
    may_approve: bool  # the SubjectAccessReview's answer for the verb `approve`
    separation_of_duties: bool


def refusal(req: Request) -> str | None:
    """Why the write must be refused, said so that the person knows what to do; None if allowed."""
    key = req.annotation
    if req.value is None:
        return None  # withdrawing is always allowed to those who may write the train
    if req.value != "true":
        return (
            f'{key} must be "true" (got "{req.value}"); to withdraw it, remove the annotation: '
            f"kubectl annotate train {req.train} {key}-"
        )
    if req.phase in FINISHED:
        return (
            f"train {req.train} already ended ({req.phase}): there is nothing left to {_verb(key)}"
        )
    if key == names.ABORT:
        return None
    if key == names.APPROVED:
        if not needs_approval(req.spec):
            return (
                f"train {req.train} needs no approval (it carries only a runtime release or "
                "staging-only flavors)"
            )
        if req.phase != Phase.AWAITING_APPROVAL:
            return (
                f"train {req.train} is {req.phase or Phase.QUEUED}, not AwaitingApproval: approve "
                "it once it has been verified in staging (kubectl wait "
                f"--for=jsonpath='{{.status.phase}}'=AwaitingApproval train/{req.train})"
            )
    if not req.may_approve:
        return (
            f"{req.user} may not {_verb(key)} trains in this namespace: that needs the verb "
            "`approve` on trains.adroit.dev (ClusterRole adroit-approver); ask an approver"
        )
    if req.separation_of_duties:
        if len(req.user) > USERNAME_LIMIT:  # a train cannot record such an author: never check
            return (
                f"your username is {len(req.user)} characters long; a train records the "
                f"authors of its changes in at most {USERNAME_LIMIT}, so it cannot tell whether "
                f"you made one of them: {_verb(key)} it as a user with a shorter name"
            )
        if req.user in (req.spec.engineer, req.created_by):
            return (
                f"{req.user} drives train {req.train} and may not {_verb(key)} it "
                "(separation of duties): ask another approver"
            )
        authored = sorted(
            c.flavor for c in req.spec.cars if req.user in (c.author, *(c.authors or ()))
        )
        if authored:
            return (
                f"{req.user} made the change train {req.train} carries for "
                f"{', '.join(authored)} and may not {_verb(key)} it (separation of duties): "
                "ask another approver"
            )
    return None


def _verb(annotation: str) -> str:
    return {
        names.APPROVED: "approve",
        names.OVERRIDE_WINDOW: "override the deploy window for",
        names.ABORT: "abort",
    }[annotation]
