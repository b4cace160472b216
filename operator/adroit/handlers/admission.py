"""The admission webhook's handlers: stamp who changed a Flavor; check and sign approvals.

The API server sends only the writes that touch what these handlers guard
(see adroit.plan.webhooks). A refusal is an AdmissionError: kubectl shows its
message to the person.
"""

import datetime as dt
from collections import OrderedDict
from typing import Any

import kopf

from adroit.api import names
from adroit.api.flavor import FlavorSpec
from adroit.api.settings import Settings
from adroit.api.train import (
    SPEC_BYTES,
    Phase,
    TrainSpec,
    TrainStatus,
    repeated_flavors,
    wire_bytes,
)
from adroit.kube.access import may_approve
from adroit.kube.metrics import APPROVALS
from adroit.kube.rest import FAILURES
from adroit.plan.approvals import (
    GUARDED,
    STAMPED,
    Request,
    Stamp,
    refusal,
    rounds,
    sign,
)
from adroit.plan.authorship import with_change, write_author
from adroit.plan.revision import flavor_revision
from adroit.plan.routes import shadow_refusal
from adroit.plan.trust import catalog_refusal, owned_fields, runtime_refusal

FORBIDDEN = 403
INVALID = 422
UNAVAILABLE = 503


def _annotations(obj: Any) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _set(patch: kopf.Patch, key: str, value: str | None) -> None:
    patch.setdefault("metadata", {}).setdefault("annotations", {})[key] = value


@kopf.on.mutate(names.GROUP, names.VERSION, "flavors", id="flavors")  # type: ignore[arg-type]
async def stamp_flavor_author(
    body: kopf.Body,
    old: Any,
    userinfo: dict[str, Any],
    operation: str,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Whoever changes a Flavor's spec is its author; nobody else may claim it.

    Also the runbook rules that depend on the settings, which CRD rules cannot see.
    """
    user = userinfo.get("username", "")
    before, now = _annotations(old), _annotations(body)
    previous = before.get(names.CHANGED_BY)
    spec_changed = operation == "CREATE" or (old or {}).get("spec") != body.get("spec")
    spec = _parsed(body.get("spec")) if spec_changed else None
    if spec_changed:
        why = shadow_refusal((body.get("spec") or {}).get("shadow"), memo.settings.traffic)
        if why is None and spec is not None:
            where = f"Flavor {(body.get('metadata') or {}).get('name', '')}"
            why = runtime_refusal(spec, memo.settings, where)
        if why is not None:
            raise kopf.AdmissionError(why, code=FORBIDDEN)
    authorship = write_author(user, before, now, memo.settings.approval.trusted_authors)
    if authorship.refusal is not None:
        raise kopf.AdmissionError(authorship.refusal, code=FORBIDDEN)
    wanted = authorship.author if spec_changed else previous
    if now.get(names.CHANGED_BY) != wanted:
        _set(patch, names.CHANGED_BY, wanted)
    # Every change's author since production's revision: the webhook's record alone.
    changes = before.get(names.AUTHORS)
    if spec is not None:
        changes = with_change(changes, flavor_revision(spec), authorship.author)
    if now.get(names.AUTHORS) != changes:
        _set(patch, names.AUTHORS, changes)


def _parsed(spec: Any) -> FlavorSpec | None:
    """A written spec as the operator reads it (None: the API server will refuse it anyway)."""
    try:
        return FlavorSpec.model_validate(spec or {})
    except ValueError:
        return None


# A Train's spec is immutable (CEL) and a train of 2,000 cars takes milliseconds to read:
# each train's is read once, keyed by its uid and generation.
_SPECS: "OrderedDict[tuple[str, int], TrainSpec]" = OrderedDict()
_SPECS_KEPT = 64


def _train_spec(body: Any) -> TrainSpec:
    meta = body.get("metadata") or {}
    key = (meta.get("uid") or "", int(meta.get("generation") or 0))
    spec = _SPECS.get(key) if key[0] else None
    if spec is None:
        spec = TrainSpec.model_validate(body.get("spec") or {})
        if key[0]:
            _SPECS[key] = spec
            if len(_SPECS) > _SPECS_KEPT:
                _SPECS.popitem(last=False)
    return spec


def _history(status: Any) -> TrainStatus:
    """Only the status history (for the approval's round), not every car's state."""
    return TrainStatus.model_validate({"history": (status or {}).get("history") or []})


def _refuse_what_only_the_operator_sets(spec: TrainSpec, settings: Settings) -> None:
    owned = owned_fields(spec)
    if owned:
        raise kopf.AdmissionError(
            f"{', '.join(owned)}: only the operator sets these, when it forms a train: leave "
            "them out (images come from the settings' runtime catalog, authors from the "
            "Flavors, revisions from the carried specs, and a train you create needs approval)",
            code=FORBIDDEN,
        )
    why = catalog_refusal(spec, settings)
    if why is not None:
        raise kopf.AdmissionError(why, code=FORBIDDEN)


def _refuse_too_large(name: str, spec: Any) -> None:
    """A spec that would leave its status no room under etcd's limit is refused now: later,
    every status write of the train would be refused and the train stuck where it is."""
    size = wire_bytes(spec or {})
    if size > SPEC_BYTES:
        raise kopf.AdmissionError(
            f"train {name}: its spec takes {size:,} bytes as JSON; a Train's spec may take at "
            f"most {SPEC_BYTES:,}, so that its status fits beside it within etcd's 1.5 MiB per "
            "object: split its cars into two or more Trains (a car that names its revision "
            "and leaves out its spec, kept in the ControllerRevision FLAVOR-REVISION, takes "
            "far less room)",
            code=INVALID,
        )


def _refuse_repeated_flavors(name: str, spec: Any) -> None:
    cars = (spec or {}).get("cars") or []
    why = repeated_flavors(car.get("flavor") for car in cars if isinstance(car, dict))
    if why is not None:
        raise kopf.AdmissionError(f"train {name}: {why}", code=INVALID)


@kopf.on.mutate(names.GROUP, names.VERSION, "trains", id="trains")  # type: ignore[arg-type]
async def check_and_sign(
    body: kopf.Body,
    old: Any,
    userinfo: dict[str, Any],
    operation: str,
    patch: kopf.Patch,
    memo: kopf.Memo,
    api: Any = None,
    **_: Any,
) -> None:
    """Refuse what only the operator may set; check each approval, and sign what it allows.

    `api` is the client of the loop that serves the webhook, for its access questions (the
    memo's when none is given).
    """
    settings: Settings = memo.settings
    user = userinfo.get("username", "")
    groups = list(userinfo.get("groups") or [])
    new, before = _annotations(body), _annotations(old)
    meta = body.get("metadata") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    created_by = before.get(names.CREATED_BY) if operation == "UPDATE" else user
    if new.get(names.CREATED_BY) != created_by:
        _set(patch, names.CREATED_BY, created_by)
    phase_text = ((old or body).get("status") or {}).get("phase")
    phase = Phase(phase_text) if phase_text else None
    if operation == "CREATE":
        _refuse_too_large(name, body.get("spec"))
        _refuse_repeated_flavors(name, body.get("spec"))
    spec = _train_spec(body)
    if operation == "CREATE" and user != getattr(memo, "operator_user", None):
        _refuse_what_only_the_operator_sets(spec, settings)

    for key in STAMPED:
        record = names.RECORDS[key]
        if new.get(key) == before.get(key):
            if new.get(record) != before.get(record):
                _set(patch, record, before.get(record))  # records are the webhook's alone
            continue
        if operation == "CREATE":
            raise kopf.AdmissionError(
                f"{key} cannot be set when a train is created: create it, then annotate it",
                code=FORBIDDEN,
            )
        allowed = True
        if key in GUARDED and new.get(key) == "true":
            try:
                allowed = await may_approve(
                    api or memo.api, user, groups, userinfo.get("uid"), namespace, name
                )
            except FAILURES as error:
                raise kopf.AdmissionError(
                    f"could not ask the API server whether {user} may set {key} on train {name} "
                    f"({type(error).__name__}: {error}); try again in a moment",
                    code=UNAVAILABLE,
                ) from error
        why = refusal(
            Request(
                annotation=key,
                value=new.get(key),
                user=user,
                train=name,
                phase=phase,
                spec=spec,
                created_by=created_by,
                may_approve=allowed,
                separation_of_duties=settings.approval.separation_of_duties,
            )
        )
        if why is not None:
            if key in GUARDED:
                APPROVALS.labels("refused").inc()
            raise kopf.AdmissionError(why, code=FORBIDDEN)
        if key in GUARDED and new.get(key) == "true":
            APPROVALS.labels("signed").inc()
        if new.get(key) is None:
            _set(patch, record, None)
            continue
        stamp = Stamp(
            key,
            namespace,
            name,
            meta.get("uid", ""),
            user,
            tuple(groups),
            dt.datetime.now(dt.UTC).replace(microsecond=0),
            round=rounds(_history((old or {}).get("status"))),
        )
        _set(patch, record, sign(stamp, memo.secrets.signing_key))
