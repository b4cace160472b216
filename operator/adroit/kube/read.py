"""Read the World: Flavors, Trains, and what the operator manages in each stage."""

import logging
from datetime import datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from adroit.api import names
from adroit.api.flavor import FlavorSpec, FlavorStatus
from adroit.api.settings import Settings
from adroit.api.train import TrainSpec, TrainStatus
from adroit.plan.approvals import Stamp, verify
from adroit.plan.observe import managed_of, workload_of
from adroit.plan.quantity import mebibytes
from adroit.plan.routes import ROUTE_KINDS
from adroit.plan.world import (
    ApprovalMark,
    FlavorView,
    Managed,
    Quota,
    StageWorld,
    TrainView,
    World,
)

log = logging.getLogger("adroit.read")
MANAGED = f"{names.MANAGED_BY}={names.MANAGED_BY_VALUE}"
ROUTES = tuple((k.group, k.version, k.plural, k.kind) for k in ROUTE_KINDS)
CHANGED_BY = names.CHANGED_BY


async def _json(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The response as plain JSON; an error status raises ApiException as usual."""
    response = await call(*args, _preload_content=False, **kwargs)
    if not 200 <= response.status <= 299:
        raise ApiException(
            status=response.status, reason=f"{response.reason}: {await response.text()}"
        )
    return dict(await response.json())


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def read_flavors(api: client.ApiClient, namespace: str) -> dict[str, FlavorView]:
    custom = client.CustomObjectsApi(api)
    data = await _json(
        custom.list_namespaced_custom_object, names.GROUP, names.VERSION, namespace, "flavors"
    )
    flavors = {}
    for item in data["items"]:
        meta = item["metadata"]
        try:
            spec = FlavorSpec.model_validate(item["spec"])
        except ValidationError as error:
            log.error("Flavor %s cannot be read (%s); leaving it alone", meta["name"], error)
            continue
        finalizers = tuple(meta.get("finalizers", ()))
        flavors[meta["name"]] = FlavorView(
            name=meta["name"],
            spec=spec,
            generation=int(meta.get("generation", 1)),
            status=FlavorStatus.model_validate(item.get("status") or {}),
            deleting="deletionTimestamp" in meta,
            has_finalizer=names.FINALIZER in finalizers,
            author=(meta.get("annotations") or {}).get(CHANGED_BY),
            resource_version=meta["resourceVersion"],
            finalizers=finalizers,
        )
    return flavors


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


def _mark(stamp: Stamp | None) -> ApprovalMark | None:
    if stamp is None:
        return None
    if not stamp.user:  # the webhook is off: nobody is known
        return ApprovalMark(by=None)
    return ApprovalMark(by=stamp.user, groups=stamp.groups, at=stamp.at)


async def read_trains(
    api: client.ApiClient, namespace: str, signing_key: bytes | None = None
) -> list[TrainView]:
    custom = client.CustomObjectsApi(api)
    data = await _json(
        custom.list_namespaced_custom_object, names.GROUP, names.VERSION, namespace, "trains"
    )
    trains = []
    for item in data["items"]:
        meta = item["metadata"]
        annotations = meta.get("annotations") or {}
        try:
            spec = TrainSpec.model_validate(item["spec"])
        except ValidationError as error:
            log.error("Train %s cannot be read (%s); leaving it alone", meta["name"], error)
            continue
        args = (meta["namespace"], meta["name"], meta["uid"])
        approved, approval_problem = _stamp(annotations, names.APPROVED, signing_key, *args)
        override, override_problem = _stamp(annotations, names.OVERRIDE_WINDOW, signing_key, *args)
        aborted, _ = _stamp(annotations, names.ABORT, signing_key, *args)
        trains.append(
            TrainView(
                name=meta["name"],
                created_at=_timestamp(meta["creationTimestamp"]),
                spec=spec,
                status=TrainStatus.model_validate(item.get("status") or {}),
                generation=int(meta.get("generation", 1)),
                approval=_mark(approved),
                approval_problem=approval_problem,
                abort=annotations.get(names.ABORT) == "true",
                abort_by=(aborted.user or None) if aborted else None,
                override_window=override is not None,
                override_problem=override_problem,
                resource_version=meta["resourceVersion"],
                uid=meta["uid"],
            )
        )
    return trains


async def read_stage(api: client.ApiClient, namespace: str, production: bool = False) -> StageWorld:
    """What the operator manages in a stage; routes and the memory quota only in production."""
    apps, core, policy = client.AppsV1Api(api), client.CoreV1Api(api), client.PolicyV1Api(api)
    deployments = (await _json(apps.list_namespaced_deployment, namespace, label_selector=MANAGED))[
        "items"
    ]
    services = (await _json(core.list_namespaced_service, namespace, label_selector=MANAGED))[
        "items"
    ]
    budgets = (
        await _json(policy.list_namespaced_pod_disruption_budget, namespace, label_selector=MANAGED)
    )["items"]
    routed: list[Managed] = []
    pods: list[dict[str, Any]] = []
    if any(not workload_of(d, []).available for d in deployments):
        pods = (await _json(core.list_namespaced_pod, namespace, label_selector=MANAGED))["items"]

    for group, version, plural, kind in ROUTES if production else ():
        try:
            routes = (
                await _json(
                    client.CustomObjectsApi(api).list_namespaced_custom_object,
                    group,
                    version,
                    namespace,
                    plural,
                    label_selector=MANAGED,
                )
            )["items"]
        except ApiException as error:
            if error.status != 404:  # the router's CRDs are not installed
                raise
            routes = []
        routed += [managed_of(kind, route) for route in routes]
    quotas = (
        (await _json(core.list_namespaced_resource_quota, namespace))["items"] if production else []
    )
    others = [managed_of("Service", s) for s in services]
    others += [managed_of("PodDisruptionBudget", b) for b in budgets]
    others += routed
    return StageWorld(
        namespace, tuple(workload_of(d, pods) for d in deployments), tuple(others), quota_of(quotas)
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


async def read_world(
    api: client.ApiClient, settings: Settings, now: datetime, signing_key: bytes | None = None
) -> World:
    ns = settings.namespaces
    return World(
        now=now,
        flavors=await read_flavors(api, ns.control),
        trains=tuple(await read_trains(api, ns.control, signing_key)),
        staging=await read_stage(api, ns.staging),
        production=await read_stage(api, ns.production, production=True),
    )
