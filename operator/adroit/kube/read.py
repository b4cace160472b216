"""What the watches bring, read as the plan sees it: Flavors, Trains and quotas."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from adroit.api import names
from adroit.api.flavor import FlavorSpec, FlavorStatus
from adroit.api.train import CarStatus, TrainSpec, TrainStatus
from adroit.plan.approvals import Stamp, rounds, verify
from adroit.plan.authorship import read_history
from adroit.plan.quantity import mebibytes
from adroit.plan.world import (
    ApprovalMark,
    FlavorView,
    Quota,
    TrainView,
    UnreadableFlavor,
)

CHANGED_BY = names.CHANGED_BY


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def flavor_or_unreadable(item: dict[str, Any]) -> FlavorView | UnreadableFlavor:
    """A Flavor as the plan sees it, or, when its spec cannot be read, a marker that keeps it
    (a Flavor left out would look deleted, and its staging would be taken down)."""
    try:
        return flavor_view(item)
    except ValidationError as error:
        meta = item["metadata"]
        try:
            status = FlavorStatus.model_validate(item.get("status") or {})
        except ValidationError:
            status = FlavorStatus()
        first = error.errors()[0]
        where = ".".join(["spec", *(str(p) for p in first["loc"])])
        return UnreadableFlavor(
            name=meta["name"],
            reason=f"{where}: {first['msg']}",
            generation=int(meta.get("generation", 1)),
            status=status,
            resource_version=meta["resourceVersion"],
            deleting="deletionTimestamp" in meta,
        )


def flavor_view(item: dict[str, Any]) -> FlavorView:
    """A Flavor as the plan sees it; ValidationError when its spec cannot be read."""
    meta = item["metadata"]
    finalizers = tuple(meta.get("finalizers", ()))
    return FlavorView(
        name=meta["name"],
        spec=FlavorSpec.model_validate(item["spec"]),
        generation=int(meta.get("generation", 1)),
        status=FlavorStatus.model_validate(item.get("status") or {}),
        deleting="deletionTimestamp" in meta,
        has_finalizer=names.FINALIZER in finalizers,
        author=(meta.get("annotations") or {}).get(CHANGED_BY),
        changes=read_history((meta.get("annotations") or {}).get(names.AUTHORS)),
        resource_version=meta["resourceVersion"],
        finalizers=finalizers,
    )


def _stamp(
    annotations: dict[str, str],
    key: str,
    signing_key: bytes | None,
    namespace: str,
    name: str,
    uid: str,
) -> tuple[Stamp | None, str | None]:
    """The valid signed record of a guarded annotation, or why there is none."""
    value = annotations.get(key)
    if value is None:
        return None, None
    if value != "true":
        return None, f'{key} is "{value}", not "true": ignored'
    if signing_key is None:  # the webhook is off: the annotation alone counts
        return Stamp(key, namespace, name, uid, "", (), datetime.min), None
    stamp = verify(
        annotations.get(names.RECORDS[key]),
        signing_key,
        annotation=key,
        namespace=namespace,
        train=name,
        uid=uid,
    )
    if stamp is None:
        return None, (
            f"{key}=true carries no valid signed record: it was written past the "
            f"admission webhook and is not honoured. Remove it and set it again: "
            f"kubectl annotate train {name} {key}- && "
            f"kubectl annotate train {name} {key}=true"
        )
    return stamp, None


def _voided(stamp: Stamp, train: str) -> str:
    key = names.APPROVED
    return (
        f"the approval by {stamp.user} was given before the train went back to Queued, and "
        "staging was redone since: it is void. Approve again once the train is "
        f"AwaitingApproval: kubectl annotate train {train} {key}- && "
        f"kubectl annotate train {train} {key}=true"
    )


def _mark(stamp: Stamp | None) -> ApprovalMark | None:
    if stamp is None:
        return None
    if not stamp.user:  # the webhook is off: nobody is known
        return ApprovalMark(by=None)
    return ApprovalMark(by=stamp.user, groups=stamp.groups, at=stamp.at)


@dataclass(frozen=True)
class ReadCars:
    """A Train's cars as last read: as the API server sent them, and as they were read."""

    sent: list[Any]
    read: list[CarStatus]


def train_status(
    raw: dict[str, Any], earlier: ReadCars | None = None
) -> tuple[TrainStatus, ReadCars]:
    """A Train's status, and its cars as read. A car sent as it was in `earlier` is not read
    again: a status of 2,000 cars takes milliseconds to read, and a write changes a few."""
    sent = raw.get("cars")
    if earlier is None or not isinstance(sent, list) or not sent:
        status = TrainStatus.model_validate(raw)
        return status, ReadCars(sent if isinstance(sent, list) else [], status.cars)
    cars = [
        earlier.read[i]
        if i < len(earlier.sent) and car == earlier.sent[i]
        else CarStatus.model_validate(car)
        for i, car in enumerate(sent)
    ]
    status = TrainStatus.model_validate({**raw, "cars": []}).model_copy(update={"cars": cars})
    return status, ReadCars(sent, cars)


def train_view(
    item: dict[str, Any],
    signing_key: bytes | None,
    spec: TrainSpec | None = None,
    status: TrainStatus | None = None,
) -> TrainView:
    """A Train as the plan sees it, its guarded annotations judged; `spec` when already parsed
    (a Train's spec never changes), `status` when already read."""
    meta = item["metadata"]
    annotations = meta.get("annotations") or {}
    args = (meta["namespace"], meta["name"], meta["uid"])
    if status is None:
        status = TrainStatus.model_validate(item.get("status") or {})
    approved, approval_problem = _stamp(annotations, names.APPROVED, signing_key, *args)
    problem_reason = "ApprovalNotVerified"
    if approved is not None and signing_key is not None and approved.round != rounds(status):
        # Signed, but in an earlier round of this train: it covered that staging, once.
        approval_problem = _voided(approved, meta["name"])
        approved = None
        problem_reason = "ApprovalVoided"
    override, override_problem = _stamp(annotations, names.OVERRIDE_WINDOW, signing_key, *args)
    aborted, _ = _stamp(annotations, names.ABORT, signing_key, *args)
    return TrainView(
        name=meta["name"],
        created_at=_timestamp(meta["creationTimestamp"]),
        spec=spec or TrainSpec.model_validate(item["spec"]),
        status=status,
        generation=int(meta.get("generation", 1)),
        approval=_mark(approved),
        approval_problem=approval_problem,
        approval_problem_reason=problem_reason,
        abort=annotations.get(names.ABORT) == "true",
        abort_by=(aborted.user or None) if aborted else None,
        override_window=override is not None,
        override_problem=override_problem,
        resource_version=meta["resourceVersion"],
        uid=meta["uid"],
    )


def quota_of(quotas: list[dict[str, Any]]) -> Quota | None:
    """The tightest memory quota of a namespace (requests.memory, limits.memory or memory)."""
    tightest: Quota | None = None
    for quota in quotas:
        status = quota.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        for key in ("requests.memory", "memory", "limits.memory"):
            if key in hard:
                found = Quota(mebibytes(hard[key]), mebibytes(used.get(key, "0")))
                if tightest is None or found.free_mib < tightest.free_mib:
                    tightest = found
    return tightest
