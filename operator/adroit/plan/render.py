"""The objects a flavor needs in one stage: pure rendering of a Flavor spec.

A Deployment is named FLAVOR-HASH, the hash taken from what its pods run and
never from its role, so a shadow that becomes the primary keeps its name and
its pods. Nothing in the pod template depends on the role or the train.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from adroit.api import names
from adroit.api.flavor import FlavorSpec
from adroit.api.settings import Runtime, Traffic
from adroit.plan.revision import digest, flavor_revision
from adroit.plan.routes import Split, render_route, split_of
from adroit.plan.stages import Role as Role  # re-exported: callers name stages from here
from adroit.plan.stages import Stage as Stage
from adroit.plan.stages import object_labels

Manifest = dict[str, Any]

# Annotations the operator reads back from what it applied.
REVISION = "adroit.dev/revision"
TRAIN = "adroit.dev/train"
FLAVOR_SPEC = "adroit.dev/flavor-spec"
IMAGE = "adroit.dev/image"
SHADOW_IMAGE = "adroit.dev/shadow-image"
SERVING = "adroit.dev/serving"
SHADOW_SERVING = "adroit.dev/shadow-serving"
APPLIED = "adroit.dev/applied-hash"
DEPLOYMENT_LABEL = "adroit.dev/deployment"

SERVING_PORT = 8080


@dataclass(frozen=True)
class Release:
    """One flavor revision as it is to run: the spec, its image, and the train carrying it."""

    flavor: str
    spec: FlavorSpec
    image: str
    train: str
    shadow_image: str | None = None
    # The runtime's catalog entry when it says more than an image (protocol, port, probe
    # paths); None for a plain image string: no probes, as before.
    serving: Runtime | None = None
    shadow_serving: Runtime | None = None
    # Read back from a Deployment, whose copy of the spec leaves its verification out: the
    # revision it was recorded with.
    recorded_revision: str | None = None

    @property
    def revision(self) -> str:
        return self.recorded_revision or flavor_revision(self.spec)


@dataclass(frozen=True)
class StagePlan:
    """What one flavor should have in one stage, split by when it may be applied."""

    workloads: tuple[Manifest, ...]  # applied first
    routing: tuple[Manifest, ...]  # applied once every workload is Available
    namespace: str


def container_memory_mib(spec: FlavorSpec) -> int:
    return spec.instances.memory_per_proc_mib * spec.instances.procs_per_container


def pod_template(release: Release, stage: Stage) -> Manifest:
    """What the pods run: the only input to the Deployment's name."""
    spec, model = release.spec, release.spec.model
    memory = f"{container_memory_mib(spec)}Mi"
    env = [
        {"name": "MODEL_NAME", "value": model.name},
        {"name": "MODEL_VERSION", "value": model.version},
        # The API server drops an empty value: leave it out, or the object never matches.
        {
            "name": "MODEL_CONFIG_PATH",
            **({"value": model.config_path} if model.config_path else {}),
        },
        {"name": "ADROIT_FLAVOR", "value": release.flavor},
        {"name": "SERVING_PROCESSES", "value": str(spec.instances.procs_per_container)},
    ]
    container: Manifest = {
        "name": "model-server",
        "image": release.image,
        "env": env,
        "ports": [{"name": "http", "containerPort": SERVING_PORT}],
        "resources": {"requests": {"memory": memory}, "limits": {"memory": memory}},
    }
    if release.serving is not None:
        container.update(probes(release.serving, model.name))
    pod_spec: Manifest = {"containers": [container]}
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


def probes(serving: Runtime, model: str) -> Manifest:
    """The container's port and, for a runtime that speaks a protocol, its probes: Available
    then means the model is loaded and answers, not that the process exists."""
    fields: Manifest = {"ports": [{"name": "http", "containerPort": serving.port}]}
    paths = serving.probe_paths(model)
    if paths is None:
        return fields
    readiness, liveness = paths
    fields["readinessProbe"] = {
        "httpGet": {"path": readiness, "port": "http"},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }
    fields["livenessProbe"] = {
        "httpGet": {"path": liveness, "port": "http"},
        "initialDelaySeconds": 30,
        "periodSeconds": 10,
        "failureThreshold": 6,
    }
    return fields


def deployment_name(release: Release, stage: Stage) -> str:
    return f"{release.flavor}-{digest(pod_template(release, stage)['spec'], 10)}"


def _stamped(manifest: Manifest) -> Manifest:
    """The manifest with a hash of itself, so an unchanged object is never written again."""
    manifest["metadata"].setdefault("annotations", {})[APPLIED] = digest(manifest, 16)
    return manifest


def shadow_view(release: Release) -> Release | None:
    """What the shadow's pods run: the primary's spec with the shadow's model fields."""
    shadow = release.spec.shadow
    if shadow is None:
        return None
    own = shadow.model.model_dump(exclude_none=True)
    model = release.spec.model.model_copy(update=own)
    spec = release.spec.model_copy(update={"model": model, "shadow": None})
    return replace(
        release,
        spec=spec,
        image=release.shadow_image or release.image,
        serving=release.shadow_serving,
    )


def release_annotations(release: Release) -> dict[str, str]:
    """What a Deployment carries so that its release can be read back (`release_of`)."""
    annotations = {
        REVISION: release.revision,
        TRAIN: release.train,
        IMAGE: release.image,
        # Without its verification: what runs does not need it, and its requests and
        # expected answers (up to 20 x 32 KiB) would not fit the 256 KiB of annotations.
        FLAVOR_SPEC: json.dumps(
            {k: v for k, v in release.spec.to_wire().items() if k != "verification"},
            sort_keys=True,
        ),
    }
    if release.spec.shadow is not None and release.shadow_image is not None:
        annotations[SHADOW_IMAGE] = release.shadow_image
    for key, serving in ((SERVING, release.serving), (SHADOW_SERVING, release.shadow_serving)):
        if serving is not None:
            annotations[key] = serving.model_dump_json(by_alias=True, exclude_none=True)
    return annotations


def _serving(annotations: Mapping[str, str], key: str) -> Runtime | None:
    text = annotations.get(key)
    return Runtime.model_validate_json(text) if text else None


def release_of(flavor: str, annotations: Mapping[str, str]) -> Release | None:
    """The release a Deployment's annotations describe (None: they cannot be read back)."""
    try:
        spec = FlavorSpec.model_validate(json.loads(annotations[FLAVOR_SPEC]))
        return Release(
            flavor=flavor,
            spec=spec,
            image=annotations[IMAGE],
            train=annotations[TRAIN],
            shadow_image=annotations.get(SHADOW_IMAGE) if spec.shadow is not None else None,
            serving=_serving(annotations, SERVING),
            shadow_serving=_serving(annotations, SHADOW_SERVING) if spec.shadow else None,
            recorded_revision=annotations.get(REVISION),
        )
    except (KeyError, ValueError):  # pydantic's ValidationError is a ValueError
        return None


def render_deployment(
    release: Release, stage: Stage, role: Role, namespace: str, runs: Release | None = None
) -> Manifest:
    """A Deployment of `release`, whose pods run `runs` (default: the release itself)."""
    runs = runs or release
    name = deployment_name(runs, stage)
    template = pod_template(runs, stage)
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
                "labels": {**object_labels(release.flavor, stage, role), DEPLOYMENT_LABEL: name},
                "annotations": release_annotations(release),
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
    name: str,
    flavor: str,
    stage: Stage,
    role: Role,
    namespace: str,
    target: str,
    headless: bool = False,
) -> Manifest:
    spec: Manifest = {
        "selector": {DEPLOYMENT_LABEL: target},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
    }
    if headless:
        spec["clusterIP"] = "None"
    return _stamped(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": object_labels(flavor, stage, role),
            },
            "spec": spec,
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
                "labels": object_labels(flavor, Stage.PRODUCTION, Role.PRIMARY),
            },
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": {names.FLAVOR_LABEL: flavor}},
            },
        }
    )


def render_stage(
    release: Release, stage: Stage, namespace: str, traffic: Traffic | None = None
) -> StagePlan:
    """Everything `release` needs in `stage`: Deployments, Services, a budget and a route.

    Production also gets the shadow (its own Deployment and Service) and, with a
    router in `traffic`, the route that splits live traffic between the two.
    """
    deployment = render_deployment(release, stage, Role.PRIMARY, namespace)
    name = deployment["metadata"]["name"]
    workloads = [deployment]
    routing = []
    # The revision's own Service. In production the route weighs it against the shadow's.
    # Staging has no route, and verification asks the stable Service, which has switched
    # to the new revision before the train verifies: there it is headless, a name for the
    # revision's pods with no ClusterIP. (The API server allocates ClusterIPs one at a
    # time: one fewer per flavor is much of what a large rollout waits for.)
    routing.append(
        render_service(
            name,
            release.flavor,
            stage,
            Role.PRIMARY,
            namespace,
            name,
            headless=stage is Stage.STAGING,
        )
    )
    shadow_name = None
    shadow = shadow_view(release) if stage is Stage.PRODUCTION else None
    if shadow is not None:
        shadow_deployment = render_deployment(release, stage, Role.SHADOW, namespace, runs=shadow)
        shadow_name = shadow_deployment["metadata"]["name"]
        workloads.append(shadow_deployment)
        routing.append(
            render_service(shadow_name, release.flavor, stage, Role.SHADOW, namespace, shadow_name)
        )
    # The stable Service: the flavor's address, always the primary's pods.
    routing.append(
        render_service(release.flavor, release.flavor, stage, Role.PRIMARY, namespace, name)
    )
    if stage is Stage.PRODUCTION:
        routing.append(render_pdb(release.flavor, namespace))
        if traffic is not None:
            spec = release.spec.shadow
            split = split_of(spec.traffic_percent, spec.mirror_percent) if spec else Split(100)
            route = render_route(release.flavor, namespace, name, shadow_name, split, traffic)
            if route is not None:
                routing.append(_stamped(route))
    return StagePlan(workloads=tuple(workloads), routing=tuple(routing), namespace=namespace)
