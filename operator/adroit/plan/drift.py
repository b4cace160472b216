"""Whether a live object still is what the operator applied: drift, field by field.

The live object holds more than the manifest (defaults and status the API
server adds), so the test is containment: every field the manifest sets is
there with an equal value. Quantities compare by value (the API server may
write 1024Mi back as 1Gi), numbers by value (10 and 10.0).

What someone else added (a nodeSelector, a route's hostnames) is contained
too; it is told by the object's managedFields instead: a field of the spec
that another field manager owns and the operator does not.
"""

import json
from collections.abc import Mapping
from typing import Any

from adroit.api import names
from adroit.plan.quantity import quantity_value

# The parts of a manifest the operator owns and compares; the rest (name,
# namespace, kind) is how the object was found.
COMPARED = ("labels", "annotations")


def trimmed(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object (live or desired) cut down to what drift compares: labels,
    annotations and spec; a ControllerRevision's data instead of a spec."""
    meta = obj.get("metadata") or {}
    body: dict[str, Any] = {"metadata": {k: meta[k] for k in COMPARED if k in meta}}
    for key in ("spec", "data"):
        if key in obj:
            body[key] = obj[key]
    return body


# Added by hand and kept: `kubectl rollout restart` restarts the pods with this annotation.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
KEPT = {("f:spec", "f:template", "f:metadata", "f:annotations", f"f:{RESTARTED_AT}")}

Path = tuple[str, ...]  # keys of managedFields' fieldsV1, as "f:spec", "k:{...}"


def _leaves(fields: Mapping[str, Any], above: Path = ()) -> set[Path]:
    """The fields a fieldsV1 tree names (a "." marks a map or item itself: not a field)."""
    found: set[Path] = set()
    for key, below in fields.items():
        if key == ".":
            continue
        if below:
            found |= _leaves(below, (*above, key))
        else:
            found.add((*above, key))
    return found


def _spelled(path: Path) -> str:
    """spec.template.spec.nodeSelector.pool, containers[{"name":"sidecar"}].image"""
    text = ""
    for key in path:
        kind, _, rest = key.partition(":")
        text += f".{rest}" if kind == "f" else f"[{rest}]"
    return text.lstrip(".")


def added_by_others(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields of the spec that another field manager set and the operator does not: what
    server-side apply leaves where it is. A subresource's writer (status, an autoscaler's
    scale) and `kubectl rollout restart` are not counted."""
    entries = (obj.get("metadata") or {}).get("managedFields") or ()
    foreign = [
        e
        for e in entries
        if e.get("manager") != names.FIELD_MANAGER
        and not e.get("subresource")
        and "f:spec" in (e.get("fieldsV1") or {})
    ]
    if not foreign:  # as nearly always: one look at each entry
        return ()
    spec = ("f:spec",)
    theirs = set().union(*(_leaves(e["fieldsV1"]["f:spec"], spec) for e in foreign))
    ours = set().union(
        *(
            _leaves((e.get("fieldsV1") or {}).get("f:spec") or {}, spec)
            for e in entries
            if e.get("manager") == names.FIELD_MANAGER and not e.get("subresource")
        )
    )
    return tuple(sorted(_spelled(p) for p in theirs - ours - KEPT))


class Body:
    """What drift compares of a live object (`trimmed`), kept as compact JSON text.

    The operator keeps one per object it manages: with 2,000 flavors that is 14,000
    of them. As text a Deployment's takes about 3 KB; as dicts and lists, 10 KB. It is
    read back only when a flavor is planned: about 10 µs for a Deployment's.
    """

    __slots__ = ("text",)

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.text = json.dumps(trimmed(obj), separators=(",", ":"))

    def read(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.text)
        return parsed

    def __repr__(self) -> str:
        return f"Body({self.text[:60]}...)"


def contains(live: Any, desired: Any, quantities: bool = False) -> bool:
    """Whether `live` has every field `desired` sets, with an equal value. Strings under
    `resources` are quantities, equal by value ('1Gi' is '1024Mi'); elsewhere ('1000m' in an
    environment variable is not '1') they are equal only as they are written."""
    # JSON from the API server and from render is dicts and lists: concrete type checks
    # keep this cheap, as it runs on every object of every flavor planned; equal
    # subtrees (most of them) are settled by one comparison in C.
    if isinstance(desired, dict):
        if live == desired:
            return True
        return isinstance(live, dict) and all(
            key in live and contains(live[key], value, quantities or key == "resources")
            for key, value in desired.items()
            if value is not None
        )
    if isinstance(desired, list | tuple):
        return (
            isinstance(live, list | tuple)
            and len(live) == len(desired)
            and all(contains(a, b, quantities) for a, b in zip(live, desired, strict=True))
        )
    return live == desired or (quantities and _same_quantity(live, desired))


def _same_quantity(live: Any, desired: Any) -> bool:
    if isinstance(live, str) and isinstance(desired, str):
        a, b = quantity_value(live), quantity_value(desired)
        return a is not None and a == b
    return False


def drifted(live: Body | None, manifest: Mapping[str, Any]) -> bool:
    """Whether the live body no longer contains the manifest (None: not known, no drift)."""
    return live is not None and differs(live.read(), manifest)


def differs(live: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    """Whether a live object (as the API server returned it) no longer contains the
    manifest."""
    return not contains(trimmed(live), trimmed(manifest))
