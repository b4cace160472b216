"""What the objects the kube layer reads mean, as plain values (no I/O).

The kube layer hands a Deployment, Service, PodDisruptionBudget or route as
the API server returned it (JSON) and gets the Workload or Managed a plan needs.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adroit.api import names
from adroit.plan.drift import Body, added_by_others
from adroit.plan.render import APPLIED, DEPLOYMENT_LABEL, release_of
from adroit.plan.world import Managed, Workload

Json = Mapping[str, Any]
# A Deployment, and its Service, are named for their flavor and a hash (render.deployment_name).
RELEASE_NAME = re.compile(r"(?P<flavor>.+)-[0-9a-f]{10}")


def flavor_of(name: str, labels: Mapping[str, str], per_release: bool) -> str:
    """The flavor an object is of: its label, unless its name says otherwise. Every object
    is named for its flavor: a Deployment, and the Service of each, with a release hash
    (`per_release`), the rest as is. A label edited by hand is drift to put back, not a move
    to another flavor, which would delete the object as a leftover of its own."""
    if not per_release:
        return name
    release = RELEASE_NAME.fullmatch(name)
    if release is None:  # not a name the operator gives: the label is all there is
        return labels.get(names.FLAVOR_LABEL, "")
    return str(release["flavor"])


def unschedulable(pods: Sequence[Json], deployment: str) -> str | None:
    """Why a Deployment's pod cannot be scheduled, if one of `pods` says so."""
    for pod in pods:
        if (pod["metadata"].get("labels") or {}).get(DEPLOYMENT_LABEL) != deployment:
            continue
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                why = condition.get("message", "")
                return f"pod {pod['metadata']['name']} cannot be scheduled: {why}"
    return None


def workload_of(item: Json, pods: Sequence[Json] = ()) -> Workload:
    """A Deployment as a Workload: its release read back, how available it is, its body."""
    meta, spec, status = item["metadata"], item["spec"], item.get("status") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    replicas = int(spec.get("replicas", 1))
    available_replicas = int(status.get("availableReplicas", 0))
    available = (
        int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
        and int(status.get("updatedReplicas", 0)) >= replicas
        and available_replicas >= replicas
    )
    stuck = any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in status.get("conditions") or []
    )
    ready = int(status.get("readyReplicas", 0))
    problem = None
    if not available:
        problem = unschedulable(pods, meta["name"]) or (
            f"Deployment {meta['name']}: {ready}/{replicas} ready"
        )
    flavor = flavor_of(meta["name"], labels, per_release=True)
    return Workload(
        name=meta["name"],
        flavor=flavor,
        role=labels.get(names.ROLE_LABEL, ""),
        applied_hash=annotations.get(APPLIED, ""),
        release=release_of(flavor, annotations),
        replicas=replicas,
        ready_replicas=ready,
        available=available,
        problem=problem,
        stuck=stuck,
        available_replicas=available_replicas,
        body=Body(item),
        added=added_by_others(item),
    )


def managed_of(kind: str, item: Json) -> Managed:
    """A Service, PodDisruptionBudget, HTTPRoute or VirtualService as a Managed."""
    meta = item["metadata"]
    target = None
    if kind == "Service":
        target = ((item.get("spec") or {}).get("selector") or {}).get(DEPLOYMENT_LABEL)
    per_release = kind == "Service" and target == meta["name"]  # not the flavor's stable one
    return Managed(
        kind,
        meta["name"],
        flavor_of(meta["name"], meta.get("labels") or {}, per_release),
        (meta.get("annotations") or {}).get(APPLIED, ""),
        target,
        body=Body(item),
        added=added_by_others(item),
    )
