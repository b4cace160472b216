"""What a flavor becomes in a stage, and how a stage is moved there."""

from adroit.api.flavor import MAX_BODY
from adroit.plan.converge import converge, health
from adroit.plan.render import (
    DEPLOYMENT_LABEL,
    Release,
    Role,
    Stage,
    deployment_name,
    release_of,
    render_deployment,
    render_stage,
)
from tests.unit.sim import Sim, spec

IMAGE = "repo/sklearn:1"


def release(
    version: str = "v1", train: str = "t1", image: str = IMAGE, **changes: object
) -> Release:
    return Release("ads", spec(version, **changes), image, train)


def test_deployment_is_named_by_what_the_pods_run() -> None:
    base = deployment_name(release(), Stage.STAGING)
    assert base.startswith("ads-")
    assert len(base) == len("ads-") + 10
    assert deployment_name(release(), Stage.PRODUCTION) == base
    assert deployment_name(release(train="t2"), Stage.STAGING) == base
    more = release(instances={"memoryPerProcMiB": 1500, "minProdContainers": 9})
    assert deployment_name(more, Stage.STAGING) == base, "replicas do not rename"
    assert deployment_name(release(version="v2"), Stage.STAGING) != base
    assert deployment_name(release(image="repo/sklearn:2"), Stage.STAGING) != base
    bigger = release(instances={"memoryPerProcMiB": 2000, "minProdContainers": 3})
    assert deployment_name(bigger, Stage.STAGING) != base


def test_role_never_reaches_the_pods() -> None:
    primary = render_deployment(release(), Stage.PRODUCTION, Role.PRIMARY, "prod")
    shadow = render_deployment(release(), Stage.PRODUCTION, Role.SHADOW, "prod")
    assert primary["metadata"]["name"] == shadow["metadata"]["name"]
    assert primary["spec"]["template"] == shadow["spec"]["template"]
    assert primary["metadata"]["labels"]["adroit.dev/role"] == "primary"
    assert shadow["metadata"]["labels"]["adroit.dev/role"] == "shadow"


def test_pods_get_the_model_memory_and_replicas() -> None:
    r = release(
        instances={
            "memoryPerProcMiB": 1500,
            "procsPerContainer": 2,
            "minProdContainers": 3,
            "stagingContainers": 1,
        }
    )
    prod = render_deployment(r, Stage.PRODUCTION, Role.PRIMARY, "prod")
    staging = render_deployment(r, Stage.STAGING, Role.PRIMARY, "staging")
    assert (prod["spec"]["replicas"], staging["spec"]["replicas"]) == (3, 1)
    container = prod["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"]["requests"]["memory"] == "3000Mi"
    assert container["resources"]["limits"]["memory"] == "3000Mi"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_NAME"] == "ads_pclick_lines_v5"
    assert env["MODEL_VERSION"] == "v1"
    assert env["MODEL_CONFIG_PATH"] == "ads_pclick_lines_v5/config.yaml"
    assert env["ADROIT_FLAVOR"] == "ads"


def test_every_object_is_labelled_and_production_has_a_budget() -> None:
    prod = render_stage(release(), Stage.PRODUCTION, "prod")
    staging = render_stage(release(), Stage.STAGING, "staging")
    assert [m["kind"] for m in prod.routing] == ["Service", "Service", "PodDisruptionBudget"]
    revision = prod.workloads[0]["metadata"]["name"]
    services = {m["metadata"]["name"]: m["spec"] for m in staging.routing}
    assert [m["kind"] for m in staging.routing] == ["Service", "Service"]
    # A Service per Deployment, and the stable one. In staging no route weighs the
    # revision's: it is headless, and only the stable Service takes a ClusterIP.
    assert services[revision] == {
        "selector": {DEPLOYMENT_LABEL: revision},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        "clusterIP": "None",
    }
    assert "clusterIP" not in services["ads"]
    assert all("clusterIP" not in m["spec"] for m in prod.routing if m["kind"] == "Service")
    for manifest in prod.workloads + prod.routing:
        labels = manifest["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "adroit"
        assert labels["adroit.dev/flavor"] == "ads"
        assert labels["adroit.dev/stage"] == "production"
        assert labels["adroit.dev/role"] in ("primary", "shadow")
    stable = next(m for m in prod.routing if m["metadata"]["name"] == "ads")
    assert stable["spec"]["selector"] == {DEPLOYMENT_LABEL: prod.workloads[0]["metadata"]["name"]}


def test_blue_green_new_pods_first_then_routing_then_cleanup() -> None:
    sim = Sim()
    world = sim.stage_world(Stage.PRODUCTION)
    old, new = (
        render_stage(release("v1"), Stage.PRODUCTION, world.namespace),
        render_stage(release("v2"), Stage.PRODUCTION, world.namespace),
    )

    def put(writes: object) -> None:
        for m in writes.apply:  # type: ignore[attr-defined]
            sim.objects[Stage.PRODUCTION][(m["kind"], m["metadata"]["name"])] = m
        for r in writes.delete:  # type: ignore[attr-defined]
            sim.objects[Stage.PRODUCTION].pop((r.kind, r.name))

    for _ in range(3):
        put(converge("ads", old, sim.stage_world(Stage.PRODUCTION)))
    assert sim.running(Stage.PRODUCTION, "ads") == "v1"

    sim.broken.add("ads")
    first = converge("ads", new, sim.stage_world(Stage.PRODUCTION))
    assert [m["kind"] for m in first.apply] == ["Deployment"]
    assert not first.delete
    put(first)
    assert not converge("ads", new, sim.stage_world(Stage.PRODUCTION)), "waits while unavailable"
    assert sim.running(Stage.PRODUCTION, "ads") == "v1", "traffic stays on the old pods"

    sim.broken.clear()
    second = converge("ads", new, sim.stage_world(Stage.PRODUCTION))
    assert {m["kind"] for m in second.apply} == {"Service"}, "an unchanged budget is not rewritten"
    assert not second.delete, "nothing is removed before traffic moved"
    put(second)
    third = converge("ads", new, sim.stage_world(Stage.PRODUCTION))
    gone = old.workloads[0]["metadata"]["name"]
    assert sorted((r.kind, r.name) for r in third.delete) == [
        ("Deployment", gone),
        ("Service", gone),
    ]
    put(third)
    assert not converge("ads", new, sim.stage_world(Stage.PRODUCTION)), "converged: no writes"
    assert health(new, sim.stage_world(Stage.PRODUCTION), "ads").converged


def test_the_largest_verification_keeps_a_deployment_within_its_annotation_limit() -> None:
    """A Deployment carries its flavor's spec to be read back, but not its verification:
    20 predictions of 16 KiB bodies and outputs (non-ASCII written as \\uXXXX) would pass
    the 256 KiB the API server allows for all annotations."""
    body = "é" * MAX_BODY
    predictions = [{"name": f"p{i}", "body": body, "expect": {"outputs": body}} for i in range(20)]
    big = release(verification={"predictions": predictions})
    assert big.spec.verification is not None
    deployment = render_deployment(big, Stage.STAGING, Role.PRIMARY, "staging")
    annotations = deployment["metadata"]["annotations"]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    assert size < 262_144, f"{size} bytes of annotations"
    back = release_of("ads", annotations)
    assert back is not None
    assert back.revision == big.revision, "read back as the revision it runs"
    again = render_deployment(back, Stage.STAGING, Role.PRIMARY, "staging")
    assert again == deployment, "what is read back renders the same: no drift"
