"""The operator's writes: server-side apply, deletion, status patches and Events.

Every write goes through adroit.kube.rest (a timeout on each). Status is
written as the difference from what was read, guarded by resourceVersion, so
a write decided on a stale view is refused (409) instead of undoing another.
A long list that changed in a few places (a Train's 2,000 cars) is written
element by element, as a JSON patch, instead of whole.
"""

import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api import names
from adroit.kube.rest import APPLY, JSON_PATCH, KINDS, MERGE, request
from adroit.plan.drift import RESTARTED_AT

REPORTING_INSTANCE = socket.gethostname()[:128]


async def apply(api: client.ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply as the operator's field manager, taking over conflicting fields."""
    meta = manifest["metadata"]
    path = KINDS[manifest["kind"]].path(meta["namespace"], meta["name"])
    return await request(
        api,
        "PATCH",
        path,
        query={"fieldManager": names.FIELD_MANAGER, "force": "true"},
        body=manifest,
        content_type=APPLY,
    )


async def replace(
    api: client.ApiClient, manifest: dict[str, Any], live: dict[str, Any]
) -> dict[str, Any]:
    """Update the object's spec to the manifest's, at the live object's resourceVersion: what
    other field managers added (server-side apply leaves what it does not own) goes too, but
    for the time of the last `kubectl rollout restart`, which would restart the pods.

    Their entries in managedFields go as well (an update may set them): a field another
    manager set to the value it has by default would otherwise stay theirs, and be found
    added again after every replace."""
    meta, seen = manifest["metadata"], live["metadata"]
    kept = [
        entry
        for entry in seen.get("managedFields") or ()
        if entry.get("manager") == names.FIELD_MANAGER or entry.get("subresource")
    ]
    body = {
        **manifest,
        "metadata": {
            # What others keep in metadata stays: finalizers, owners, their labels and
            # annotations (a GitOps tool's, the Deployment controller's revision).
            **seen,
            "labels": {**(seen.get("labels") or {}), **(meta.get("labels") or {})},
            "annotations": {**(seen.get("annotations") or {}), **(meta.get("annotations") or {})},
            "managedFields": kept or [{}],  # [{}]: none at all (an empty list changes nothing)
        },
    }
    restarted = _restarted_at(live)
    if restarted is not None and manifest["kind"] == "Deployment":
        template = body["spec"]["template"]
        template_meta = template.get("metadata") or {}
        annotations = {**(template_meta.get("annotations") or {}), RESTARTED_AT: restarted}
        body["spec"] = {
            **body["spec"],
            "template": {**template, "metadata": {**template_meta, "annotations": annotations}},
        }
    path = KINDS[manifest["kind"]].path(meta["namespace"], meta["name"])
    return await request(api, "PUT", path, query={"fieldManager": names.FIELD_MANAGER}, body=body)


def _restarted_at(live: dict[str, Any]) -> str | None:
    template = (live.get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)
    return value if isinstance(value, str) else None


async def delete(api: client.ApiClient, kind: str, namespace: str, name: str) -> bool:
    """Delete in the background; False when it was gone already."""
    try:
        await request(
            api,
            "DELETE",
            KINDS[kind].path(namespace, name),
            body={"propagationPolicy": "Background"},
        )
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


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


# A list this long whose length did not change is written by its changed elements.
BY_ELEMENT = 64


def _pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def status_json_patch(
    current: dict[str, Any], desired: dict[str, Any], changed: Iterable[str]
) -> list[dict[str, Any]] | None:
    """The RFC 6902 patch that turns status `current` into `desired`, whose `changed` members
    differ, when a long list among them changed in place and in at most half its elements
    (None otherwise: the merge patch says it as well or in fewer bytes). Each changed member
    is set whole, and each changed element of such a list alone."""
    ops: list[dict[str, Any]] = []
    in_place = False
    for key in changed:
        if key not in desired:
            ops.append({"op": "remove", "path": _pointer("status", key)})
            continue
        old, new = current.get(key), desired[key]
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) >= BY_ELEMENT:
            elements = [i for i, (was, now) in enumerate(zip(old, new, strict=True)) if was != now]
            if len(elements) * 2 <= len(new):
                in_place = True
                ops += [
                    {"op": "replace", "path": _pointer("status", key, i), "value": new[i]}
                    for i in elements
                ]
                continue
        ops.append({"op": "add", "path": _pointer("status", key), "value": new})
    return ops if in_place else None


async def patch_status(
    api: client.ApiClient,
    kind: str,
    namespace: str,
    name: str,
    resource_version: str,
    current: dict[str, Any],
    desired: dict[str, Any],
) -> dict[str, Any] | None:
    """Write the status difference, guarded by resourceVersion: the object as written, the
    same object when there was nothing to write ({}), or None on a conflict or when it is gone."""
    diff = merge_patch(current, desired)
    if diff is None:
        return {}
    path = KINDS[kind].path(namespace, name, "status")
    guard = {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version}
    try:
        if (ops := status_json_patch(current, desired, diff)) is not None:
            try:
                return await request(
                    api, "PATCH", path, body=[guard, *ops], content_type=JSON_PATCH
                )
            except ApiException as error:
                if error.status != 422:
                    raise
                # A path the stored status does not have (it was read leniently): whole
                # members, by merge patch, as for any other change.
        body = {"metadata": {"resourceVersion": resource_version}, "status": diff}
        return await request(api, "PATCH", path, body=body, content_type=MERGE)
    except ApiException as error:
        if error.status in (404, 409):
            return None
        raise


async def set_finalizers(
    api: client.ApiClient, namespace: str, name: str, resource_version: str, finalizers: list[str]
) -> dict[str, Any] | None:
    """A Flavor's finalizers, guarded by resourceVersion; None on a conflict or when gone."""
    body = {"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}}
    try:
        return await request(
            api, "PATCH", KINDS["Flavor"].path(namespace, name), body=body, content_type=MERGE
        )
    except ApiException as error:
        if error.status in (404, 409):
            return None
        raise


async def create(api: client.ApiClient, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Create; None when an object of that name exists already."""
    meta = manifest["metadata"]
    try:
        return await request(
            api, "POST", KINDS[manifest["kind"]].path(meta["namespace"]), body=manifest
        )
    except ApiException as error:
        if error.status == 409:
            return None
        raise


async def post_event(
    api: client.ApiClient,
    involved: dict[str, Any],
    reason: str,
    message: str,
    type_: str = "Normal",
) -> None:
    """An Event on `involved` (apiVersion, kind, name, namespace, uid)."""
    now = datetime.now(UTC).isoformat()
    body = {
        "metadata": {"generateName": f"{involved['name']}.", "namespace": involved["namespace"]},
        "involvedObject": involved,
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": "adroit"},
        "reportingComponent": "adroit.dev/operator",
        "reportingInstance": REPORTING_INSTANCE,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    await request(api, "POST", KINDS["Event"].path(involved["namespace"]), body=body)
