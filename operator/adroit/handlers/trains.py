"""Train events: a new train is recorded as Queued."""

import datetime as dt
from typing import Any

import kopf

from adroit.api.names import GROUP, VERSION
from adroit.api.train import TrainSpec, TrainStatus
from adroit.handlers.flavors import write_status_changes
from adroit.plan.observe import observe_new_train


@kopf.on.resume(GROUP, VERSION, "trains")
@kopf.on.create(GROUP, VERSION, "trains")
async def observe(
    spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    current = TrainStatus.model_validate(dict(status))
    desired = observe_new_train(
        TrainSpec.model_validate(dict(spec)),
        int(meta.get("generation", 0)),
        current,
        now=dt.datetime.now(dt.UTC),
    )
    write_status_changes(current.to_wire(), desired.to_wire(), patch)
