"""Flavor events: record what was observed. Trains carry the changes (adroit.handlers.trains)."""

import datetime as dt
from typing import Any

import kopf

from adroit.api.flavor import FlavorSpec, FlavorStatus
from adroit.api.names import GROUP, VERSION
from adroit.plan.observe import observe_flavor


@kopf.on.resume(GROUP, VERSION, "flavors")
@kopf.on.create(GROUP, VERSION, "flavors")
@kopf.on.update(GROUP, VERSION, "flavors", field="spec")
async def observe(
    spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    current = FlavorStatus.model_validate(dict(status))
    desired = observe_flavor(
        FlavorSpec.model_validate(dict(spec)),
        int(meta.get("generation", 0)),
        current,
        now=dt.datetime.now(dt.UTC),
    )
    write_status_changes(current.to_wire(), desired.to_wire(), patch)


def write_status_changes(
    current: dict[str, Any], desired: dict[str, Any], patch: kopf.Patch
) -> None:
    """Patch only the top-level status fields that differ: a second pass writes nothing."""
    for key, value in desired.items():
        if current.get(key) != value:
            patch.status[key] = value
