"""The objects a flavor needs in one stage: pure rendering of a Flavor spec.

A Deployment is named FLAVOR-HASH, the hash taken from what its pods run and
never from its role, so a shadow that becomes the primary keeps its name and
its pods. Nothing in the pod template depends on the role or the train.
"""

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from adroit.api import names
from adroit.api.flavor import FlavorSpec
from adroit.plan.revision import flavor_revision

Manifest = dict[str, Any]

# Annotations the operator reads back from what it applied.
REVISION = "adroit.dev/revision"
TRAIN = "adroit.dev/train"
FLAVOR_SPEC = "adroit.dev/flavor-spec"
IMAGE = "adroit.dev/image"
APPLIED = "adroit.dev/applied-hash"
DEPLOYMENT_LABEL = "adroit.dev/deployment"

SERVING_PORT = 8080


class Stage(StrEnum):
    STAGING = "staging"
    PRODUCTION = "production"


class Role(StrEnum):
    PRIMARY = "primary"
    SHADOW = "shadow"


@dataclass(frozen=True)
class Release:
    """One flavor revision as it is to run: the spec, its image, and the train carrying it."""

    flavor: str
    spec: FlavorSpec
    image: str
    train: str

    @property
    def revision(self) -> str:
        return flavor_revision(self.spec)


@dataclass(frozen=True)
class StagePlan:
    """What one flavor should have in one stage, split by when it may be applied."""

    workloads: tuple[Manifest, ...]  # applied first
    routing: tuple[Manifest, ...]  # applied once every workload is Available
    namespace: str


def _hash(data: Any, length: int) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def container_memory_mib(spec: FlavorSpec) -> int:
    return spec.instances.memory_per_proc_mib * spec.instances.procs_per_container


def pod_template(release: Release, stage: Stage) -> Manifest:
    """What the pods run: the only input to the Deployment's name."""
    spec, model = release.spec, release.spec.model
    memory = f"{container_memory_mib(spec)}Mi"
    env = [
        {"name": "MODEL_NAME", "value": model.name},
        {"name": "MODEL_VERSION", "value": model.version},
        {"name": "MODEL_CONFIG_PATH", "value": model.config_path or ""},
        {"name": "ADROIT_FLAVOR", "value": release.flavor},
        {"name": "SERVING_PROCESSES", "value": str(spec.instances.procs_per_container)},
    ]
    pod_spec: Manifest = {
        "containers": [
            {
                "name": "model-server",
                "image": release.image,
                "env": env,
                "ports": [{"name": "http", "containerPort": SERVING_PORT}],
                "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
            }
        ],
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    return {
        "metadata": {
            "labels": {
                names.MANAGED_BY: names.MANAGED_BY_VALUE,
                names.FLAVOR_LABEL: release.flavor,
                names.STAGE_LABEL: stage.value,
            }
        },
        "spec": pod_spec,
    }


def deployment_name(release: Release, stage: Stage) -> str:
    return f"{release.flavor}-{_hash(pod_template(release, stage)['spec'], 10)}"


def _labels(flavor: str, stage: Stage, role: Role) -> dict[str, str]:
    return {
        names.MANAGED_BY: names.MANAGED_BY_VALUE,
        names.FLAVOR_LABEL: flavor,
        names.STAGE_LABEL: stage.value,
        names.ROLE_LABEL: role.value,
    }


def _stamped(manifest: Manifest) -> Manifest:
    """The manifest with a hash of itself, so an unchanged object is never written again."""
    manifest["metadata"].setdefault("annotations", {})[APPLIED] = _hash(manifest, 16)
    return manifest


def render_deployment(release: Release, stage: Stage, role: Role, namespace: str) -> Manifest:
    name = deployment_name(release, stage)
    template = pod_template(release, stage)
    template["metadata"]["labels"][DEPLOYMENT_LABEL] = name
    instances = release.spec.instances
    replicas = (
        instances.min_prod_containers if stage is Stage.PRODUCTION else instances.staging_containers
    )
    return _stamped(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {**_labels(release.flavor, stage, role), DEPLOYMENT_LABEL: name},
                "annotations": {
                    REVISION: release.revision,
                    TRAIN: release.train,
                    IMAGE: release.image,
                    FLAVOR_SPEC: json.dumps(release.spec.to_wire(), sort_keys=True),
                },
            },
            "spec": {
                "replicas": replicas,
                "revisionHistoryLimit": 2,
                "selector": {"matchLabels": {DEPLOYMENT_LABEL: name}},
                "template": template,
            },
        }
    )


def render_service(
    name: str, flavor: str, stage: Stage, role: Role, namespace: str, target: str
) -> Manifest:
    return _stamped(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": _labels(flavor, stage, role),
            },
            "spec": {
                "selector": {DEPLOYMENT_LABEL: target},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }
    )


def render_pdb(flavor: str, namespace: str) -> Manifest:
    return _stamped(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "name": flavor,
                "namespace": namespace,
                "labels": _labels(flavor, Stage.PRODUCTION, Role.PRIMARY),
            },
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": {names.FLAVOR_LABEL: flavor}},
            },
        }
    )


def render_stage(release: Release, stage: Stage, namespace: str) -> StagePlan:
    """Everything `release` needs in `stage`: its Deployment, Services and, in production, a PDB."""
    deployment = render_deployment(release, stage, Role.PRIMARY, namespace)
    name = deployment["metadata"]["name"]
    routing = [
        render_service(name, release.flavor, stage, Role.PRIMARY, namespace, name),
        # The stable Service: the flavor's address, always the primary's pods.
        render_service(release.flavor, release.flavor, stage, Role.PRIMARY, namespace, name),
    ]
    if stage is Stage.PRODUCTION:
        routing.append(render_pdb(release.flavor, namespace))
    return StagePlan(workloads=(deployment,), routing=tuple(routing), namespace=namespace)
