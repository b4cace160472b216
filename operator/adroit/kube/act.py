"""Carry out a Plan: server-side apply, deletions, status, Events, notifications.

Stage objects first, then train status (so a train never reports a step whose
writes failed), then Flavors, then a new train. A conflict (409) skips that
write: the next pass reads the world again and decides anew.
"""

import logging
import socket
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api import names
from adroit.api.settings import Settings
from adroit.kube.notify import notify
from adroit.kube.read import ROUTES
from adroit.plan.converge import Removal
from adroit.plan.machine import Notice
from adroit.plan.reconcile import Plan
from adroit.plan.render import Manifest
from adroit.plan.world import TrainView, World

log = logging.getLogger("adroit.act")
# The client's stubs leave out _content_type, which its methods accept in **kwargs.
APPLY: dict[str, Any] = {"_content_type": "application/apply-patch+yaml"}
MERGE: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


def merge_patch(current: Any, desired: Any) -> Any:
    """The RFC 7386 merge patch that turns `current` into `desired` (None: no change)."""
    if not isinstance(current, dict) or not isinstance(desired, dict):
        return None if current == desired else desired
    patch: dict[str, Any] = {}
    for key in current.keys() - desired.keys():
        patch[key] = None
    for key, value in desired.items():
        if key not in current:
            patch[key] = value
        else:
            sub = merge_patch(current[key], value)
            if sub is not None or (value is None and current[key] is not None):
                patch[key] = sub
    return patch or None


ROUTE_KINDS = {k: (g, v, p) for g, v, p, k in ROUTES}


async def apply(api: client.ApiClient, manifest: Manifest) -> None:
    kind, meta = manifest["kind"], manifest["metadata"]
    name, ns = meta["name"], meta["namespace"]
    if kind in ROUTE_KINDS:
        group, version, plural = ROUTE_KINDS[kind]
        await client.CustomObjectsApi(api).patch_namespaced_custom_object(
            group,
            version,
            ns,
            plural,
            name,
            manifest,
            field_manager=names.FIELD_MANAGER,
            force=True,
            **APPLY,
        )
        log.info("applied %s %s/%s", kind, ns, name)
        return
    call = {
        "Deployment": client.AppsV1Api(api).patch_namespaced_deployment,
        "Service": client.CoreV1Api(api).patch_namespaced_service,
        "PodDisruptionBudget": client.PolicyV1Api(api).patch_namespaced_pod_disruption_budget,
    }[kind]
    await call(name, ns, manifest, field_manager=names.FIELD_MANAGER, force=True, **APPLY)
    log.info("applied %s %s/%s", kind, ns, name)


async def remove(api: client.ApiClient, removal: Removal) -> None:
    if removal.kind in ROUTE_KINDS:
        group, version, plural = ROUTE_KINDS[removal.kind]
        try:
            await client.CustomObjectsApi(api).delete_namespaced_custom_object(
                group, version, removal.namespace, plural, removal.name
            )
        except ApiException as error:
            if error.status != 404:
                raise
        return
    call = {
        "Deployment": client.AppsV1Api(api).delete_namespaced_deployment,
        "Service": client.CoreV1Api(api).delete_namespaced_service,
        "PodDisruptionBudget": client.PolicyV1Api(api).delete_namespaced_pod_disruption_budget,
    }[removal.kind]
    try:
        await call(removal.name, removal.namespace, propagation_policy="Background")
        log.info("deleted %s %s/%s", removal.kind, removal.namespace, removal.name)
    except ApiException as error:
        if error.status != 404:
            raise


async def patch_status(
    api: client.ApiClient,
    plural: str,
    namespace: str,
    name: str,
    resource_version: str,
    current: dict[str, Any],
    desired: dict[str, Any],
) -> bool:
    """Write the status difference, guarded by resourceVersion; False on a conflict."""
    diff = merge_patch(current, desired)
    if diff is None:
        return True
    body = {"metadata": {"resourceVersion": resource_version}, "status": diff}
    try:
        await client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            names.GROUP, names.VERSION, namespace, plural, name, body, **MERGE
        )
    except ApiException as error:
        if error.status in (404, 409):
            log.info("%s %s changed meanwhile (%s); looking again", plural, name, error.status)
            return False
        raise
    return True


async def post_event(
    api: client.ApiClient, train: TrainView, namespace: str, notice: Notice
) -> None:
    now = datetime.now(UTC)
    body = {
        "metadata": {"generateName": f"{train.name}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": names.API_VERSION,
            "kind": "Train",
            "name": train.name,
            "namespace": namespace,
            "uid": train.uid,
        },
        "reason": notice.reason,
        "message": notice.message[:1024],
        "type": notice.type,
        "source": {"component": "adroit"},
        "reportingComponent": "adroit.dev/operator",
        "reportingInstance": socket.gethostname()[:128],
        "firstTimestamp": now.isoformat(),
        "lastTimestamp": now.isoformat(),
        "eventTime": None,
        "count": 1,
    }
    try:
        await client.CoreV1Api(api).create_namespaced_event(namespace, body)  # type: ignore[arg-type]
    except ApiException as error:  # an Event is a report, never a reason to stop
        log.warning(
            "could not post Event %s for train %s: %s", notice.reason, train.name, error.reason
        )


async def set_finalizers(
    api: client.ApiClient, namespace: str, name: str, resource_version: str, finalizers: list[str]
) -> None:
    body = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
    try:
        await client.CustomObjectsApi(api).patch_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, "flavors", name, body, **MERGE
        )
    except ApiException as error:
        if error.status not in (404, 409):
            raise


async def carry_out(api: client.ApiClient, plan: Plan, world: World, settings: Settings) -> int:
    """Make the plan true; returns how many writes it took."""
    writes = 0
    control = settings.namespaces.control
    for manifest in plan.writes.apply:
        await apply(api, manifest)
        writes += 1
    for removal in plan.writes.delete:
        await remove(api, removal)
        writes += 1

    trains = {t.name: t for t in world.trains}
    for name, step in plan.trains.items():
        train = trains[name]
        written = await patch_status(
            api,
            "trains",
            control,
            name,
            train.resource_version,
            train.status.to_wire(),
            step.status.to_wire(),
        )
        writes += 1
        if not written:
            continue
        for notice in step.notices:
            log.info("train %s: %s: %s", name, notice.reason, notice.message)
            await post_event(api, train, control, notice)
            if notice.notify and settings.notifications.webhook_url:
                await notify(str(settings.notifications.webhook_url), notice.message)

    for name, status in plan.flavors.items():
        flavor = world.flavors[name]
        await patch_status(
            api,
            "flavors",
            control,
            name,
            flavor.resource_version,
            flavor.status.to_wire(),
            status.to_wire(),
        )
        writes += 1

    for name in plan.add_finalizer + plan.remove_finalizer:
        flavor = world.flavors[name]
        keep = [f for f in flavor.finalizers if f != names.FINALIZER]
        if name in plan.add_finalizer:
            keep.append(names.FINALIZER)
        await set_finalizers(api, control, name, flavor.resource_version, keep)
        writes += 1

    if plan.formation is not None:
        for revision in plan.formation.revisions:  # the cars' spec snapshots, first
            try:
                apps = client.AppsV1Api(api)
                await apps.create_namespaced_controller_revision(control, revision)  # type: ignore[arg-type]
            except ApiException as error:
                if error.status != 409:  # same name, same content
                    raise
            writes += 1
    if plan.new_train is not None:
        try:
            await client.CustomObjectsApi(api).create_namespaced_custom_object(
                names.GROUP, names.VERSION, control, "trains", plan.new_train
            )
            log.info(
                "formed train %s with %d car(s)",
                plan.new_train["metadata"]["name"],
                len(plan.new_train["spec"]["cars"]),
            )
        except ApiException as error:
            if error.status != 409:
                raise
        writes += 1
    return writes
