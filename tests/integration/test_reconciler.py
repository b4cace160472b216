"""The reconciler on a real cluster: fault isolation, drift repair, reverts, big trains."""

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from adroit.plan import contest
from tests.integration.operator import IMAGE, Operator, Webhook, frozen_today, own_operator
from tests.kube import apply, eventually, kubectl, refusing

OTHER_IMAGE = "registry.local/adroit/serving-xgboost:1.7"


@pytest.fixture
def op(tmp_path: Path, webhook: Webhook) -> Iterator[Operator]:
    with own_operator(
        tmp_path,
        webhook=webhook,
        runtimes={"scikit-learn-2022-10": IMAGE, "xgboost-1-7": OTHER_IMAGE},
    ) as running:
        running.start()
        yield running


@pytest.fixture
def poison(op: Operator) -> Iterator[str]:
    """A ValidatingAdmissionPolicy that refuses Deployments of flavor `poison` in staging:
    the API server itself refuses the operator's write, as it would a bad field."""
    message = "deployments of flavor poison are refused here"
    probe = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "probe",
            "namespace": op.staging,
            "labels": {"adroit.dev/flavor": "poison"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "probe"}},
            "template": {
                "metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "c", "image": IMAGE}]},
            },
        },
    }
    rule = {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["deployments"],
    }
    expression = (
        "!has(object.metadata.labels) || "
        "!('adroit.dev/flavor' in object.metadata.labels) || "
        "object.metadata.labels['adroit.dev/flavor'] != 'poison'"
    )
    with refusing(f"refuse-poison-{op.ns}", rule, expression, message, op.staging, probe):
        yield message


def scaled_to_zero_is_put_back(op: Operator, flavor: str) -> str:
    """Scale the flavor's production Deployment to 0; it is back at 3. Its name."""
    [deployment] = op.deployments("production", flavor)
    name: str = deployment["metadata"]["name"]
    kubectl("scale", "deployment", name, "-n", op.production, "--replicas=0")
    eventually(
        lambda: op.get("deployment", name, op.production)["spec"]["replicas"] == 3,
        what=f"{flavor}'s replicas scaled to 0 to be put back",
    )
    return name


def test_a_refused_write_fails_its_car_and_nothing_else(
    op: Operator, webhook: Webhook, poison: str
) -> None:
    good = op.ship(op.flavor("good", version="v1"))
    apply(op.flavor("poison", version="v1"), user="bob")
    train = op.new_train({good})
    status = op.wait_phase(train, "RolledBack")["status"]

    car = next(c for c in status["cars"] if c["flavor"] == "poison")
    assert car["staging"] == "Failed"
    assert poison in car["message"], "the API server's own message, in the car's status"
    assert poison in status["history"][-1]["message"]
    events = op.events(train)
    assert poison in events
    assert any(poison in text and train in text for text in webhook.texts), webhook.texts
    assert op.deployments("staging", "poison") == []

    # Meanwhile and after, every other flavor is looked after: drift on `good` is put
    # back, and a new change of another flavor ships on the next train.
    production = op.deployments("production", "good")[0]["metadata"]["name"]
    kubectl("scale", "deployment", production, "-n", op.production, "--replicas=0")
    eventually(
        lambda: op.get("deployment", production, op.production)["spec"]["replicas"] == 3,
        what="the scaled-down Deployment to be put back",
    )
    assert op.ship(op.flavor("other", version="v1"))
    assert op.phase(train) == "RolledBack"


def test_a_flavor_that_fails_to_plan_stops_no_other(
    op: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met while planning one flavor (here: its status cannot be computed) is that
    flavor's alone: the next change of another ships, and its own drift is still put back."""
    from adroit.kube import controller

    op.ship(op.flavor("broken", version="v1"))
    computed = controller.flavor_status

    def flavor_status(view: Any, world: Any) -> Any:
        if view.name == "broken":
            raise RuntimeError("a bug in planning this flavor")
        return computed(view, world)

    monkeypatch.setattr(controller, "flavor_status", flavor_status)
    kubectl("annotate", "flavor", "broken", "-n", op.ns, "touched=now")  # its key is planned
    assert op.ship(op.flavor("good", version="v1"))
    scaled_to_zero_is_put_back(op, "broken")  # its drift all the same


def test_a_reconciler_that_fails_is_started_again(
    op: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that no key's guard catches (a bug in the loop itself) is logged, and the
    reconciler starts again from its caches a few seconds later: it never stops silently."""
    from adroit.kube import controller

    batch = controller.Controller._batch
    failures = iter([RuntimeError("a bug in the loop")])

    async def failing_once(self: Any, due: set[str], world: Any) -> None:
        if failure := next(failures, None):
            raise failure
        await batch(self, due, world)

    monkeypatch.setattr(controller.Controller, "_batch", failing_once)
    assert op.ship(op.flavor("ads", version="v1"))


def test_drift_is_put_back(op: Operator) -> None:
    op.ship(op.flavor("ads", version="v1"))
    name = scaled_to_zero_is_put_back(op, "ads")
    kubectl("set", "image", f"deployment/{name}", "-n", op.production, "model-server=evil:latest")
    eventually(
        lambda: (
            op.get("deployment", name, op.production)["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
            == IMAGE
        ),
        what="the edited image to be put back",
    )
    for kind, obj in (
        ("service", "ads"),
        ("service", name),
        ("httproute", "ads"),
        ("poddisruptionbudget", "ads"),
    ):
        uid = op.get(kind, obj, op.production)["metadata"]["uid"]
        kubectl("delete", kind, obj, "-n", op.production)
        eventually(
            lambda kind=kind, obj=obj, uid=uid: (
                kubectl(
                    "get",
                    kind,
                    obj,
                    "-n",
                    op.production,
                    "-o",
                    "jsonpath={.metadata.uid}",
                    check=False,
                ).stdout
                not in ("", uid)
            ),
            what=f"the deleted {kind} {obj} to come back",
        )
    ready = eventually(
        lambda: next(
            (
                c
                for c in op.get("flavor", "ads")["status"]["conditions"]
                if c["type"] == "Ready" and c["status"] == "True"
            ),
            None,
        ),
        what="the flavor Ready again",
    )
    assert ready


@pytest.mark.parametrize("stage", ["production", "staging"])
def test_a_deleted_deployment_is_put_back_without_a_train(op: Operator, stage: str) -> None:
    """Deleted by hand, what a stage ran comes back like any drift: not a new train that
    waits for an approval while the stable Service routes to nothing."""
    shipped = op.ship(op.flavor("ads", version="v1"))
    [deployment] = op.deployments(stage, "ads")
    name, uid = deployment["metadata"]["name"], deployment["metadata"]["uid"]
    kubectl("delete", "deployment", name, "-n", deployment["metadata"]["namespace"])
    back = eventually(
        lambda: next(
            (d for d in op.deployments(stage, "ads") if d["metadata"]["uid"] != uid), None
        ),
        what=f"the deleted {stage} Deployment to come back",
    )
    assert back["metadata"]["name"] == name, "the same release"
    assert op.model_version(stage, "ads") == "v1"
    time.sleep(2)  # a train would have formed by now
    assert [t["metadata"]["name"] for t in op.trains()] == [shipped], "no train, no approval"


def test_a_hand_edit_the_operator_cannot_put_back_makes_the_flavor_not_ready(
    op: Operator,
) -> None:
    op.ship(op.flavor("ads", version="v1"))
    edit = [
        {"op": "remove", "path": "/spec/maxUnavailable"},
        {"op": "add", "path": "/spec/minAvailable", "value": 6},
    ]
    kubectl("patch", "pdb", "ads", "-n", op.production, "--type=json", "-p", json.dumps(edit))

    def ready() -> dict[str, Any]:
        conditions = op.get("flavor", "ads")["status"]["conditions"]
        return next(c for c in conditions if c["type"] == "Ready")

    refused = eventually(
        lambda: (c := ready())["reason"] == "WriteRefused" and c,
        what="Ready to say the repair is refused",
    )
    assert refused["status"] == "False"
    assert "minAvailable and maxUnavailable cannot be both set" in refused["message"]
    undo = [{"op": "remove", "path": "/spec/minAvailable"}]
    kubectl("patch", "pdb", "ads", "-n", op.production, "--type=json", "-p", json.dumps(undo))
    eventually(lambda: ready()["status"] == "True", what="the flavor Ready once the edit is undone")
    assert op.get("pdb", "ads", op.production)["spec"]["maxUnavailable"] == 1


def test_what_is_added_to_a_deployment_by_hand_is_taken_out(op: Operator) -> None:
    """Server-side apply leaves fields another manager owns: an env var from `kubectl set
    env`, a container added with a patch. They go, and the flavor's next train ships."""
    op.ship(op.flavor("ads", version="v1"))
    [deployment] = op.deployments("production", "ads")
    name = deployment["metadata"]["name"]
    pods = deployment["spec"]["template"]["spec"]
    kubectl("set", "env", f"deployment/{name}", "-n", op.production, "EXTRA=1")
    sidecar = {
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": IMAGE}]}}}
    }
    kubectl("patch", "deployment", name, "-n", op.production, "-p", json.dumps(sidecar))

    def template() -> dict[str, Any]:
        return op.get("deployment", name, op.production)["spec"]["template"]["spec"]

    eventually(
        lambda: template()["containers"] == pods["containers"],
        what="the added env var and container to be taken out",
    )
    op.ship(op.flavor("ads", version="v2"))
    assert op.model_version("production", "ads") == "v2"


def test_fields_added_by_hand_are_taken_out_and_a_restart_stays(op: Operator) -> None:
    """What the operator does not set itself is seen in the object's managedFields: a
    nodeSelector, a route's hostnames, a Service's session affinity go. The time of a
    `kubectl rollout restart` stays: its pods are not restarted again."""
    op.ship(op.flavor("ads", version="v1"))
    [deployment] = op.deployments("production", "ads")
    name, ns = deployment["metadata"]["name"], op.production
    kubectl("rollout", "restart", f"deployment/{name}", "-n", ns)

    def restarted_at() -> str | None:
        template = op.get("deployment", name, ns)["spec"]["template"]
        return (template["metadata"].get("annotations") or {}).get(
            "kubectl.kubernetes.io/restartedAt"
        )

    restart = restarted_at()
    assert restart
    for kind, obj in (("deployment", name), ("service", "ads"), ("httproute", "ads")):
        kubectl("annotate", kind, obj, "-n", ns, "example.com/team=ranking")
    edits = {
        ("deployment", name): {"spec": {"template": {"spec": {"nodeSelector": {"pool": "gpu"}}}}},
        ("httproute", "ads"): {"spec": {"hostnames": ["ads.example.com"]}},
        ("service", "ads"): {"spec": {"sessionAffinity": "ClientIP"}},
    }
    for (kind, obj), edit in edits.items():
        kubectl("patch", kind, obj, "-n", ns, "--type=merge", "-p", json.dumps(edit))

    def spec(kind: str, obj: str) -> dict[str, Any]:
        return dict(op.get(kind, obj, ns)["spec"])

    eventually(
        lambda: "nodeSelector" not in spec("deployment", name)["template"]["spec"],
        what="the nodeSelector added by hand to be taken out",
    )
    eventually(
        lambda: "hostnames" not in spec("httproute", "ads"), what="the route's hostnames to go"
    )
    eventually(
        lambda: spec("service", "ads").get("sessionAffinity") == "None",
        what="the session affinity to be put back",
    )
    assert restarted_at() == restart, "the restart is kept"
    for kind, obj in edits:
        live = json.loads(
            kubectl("get", kind, obj, "-n", ns, "-o", "json", "--show-managed-fields").stdout
        )
        managers = {e["manager"] for e in live["metadata"]["managedFields"]}
        assert "kubectl-patch" not in managers, f"{kind} {obj}: nothing of the edit is left"
        annotations = live["metadata"]["annotations"]
        assert annotations["example.com/team"] == "ranking", "what others keep in metadata stays"


def test_an_object_something_else_keeps_changing_is_put_back_a_few_times_and_named(
    op: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An autoscaler or a script that keeps setting the replicas: the operator puts them back
    at most LIMIT times a WINDOW instead of writing in turn with it, and says so."""
    monkeypatch.setattr(contest, "WINDOW", 20.0)
    op.ship(op.flavor("ads", version="v1"))
    [deployment] = op.deployments("production", "ads")
    name, ns = deployment["metadata"]["name"], op.production
    scaled = json.dumps({"spec": {"replicas": 5}})
    changed = 0
    until = time.monotonic() + 10
    while time.monotonic() < until:
        out = kubectl("patch", "deployment", name, "-n", ns, "--type=merge", "-p", scaled).stdout
        changed += "(no change)" not in out
        time.sleep(0.2)
    assert changed <= contest.LIMIT + 2, f"scaled {changed} times: the operator wrote in turn"

    def ready() -> dict[str, Any]:
        conditions = op.get("flavor", "ads")["status"]["conditions"]
        return next(c for c in conditions if c["type"] == "Ready")

    said = eventually(lambda: (c := ready())["reason"] == "Contested" and c, what="Contested")
    assert said["status"] == "False"
    assert f"Deployment {name} in production was put back 5 times" in said["message"]
    eventually(
        lambda: op.get("deployment", name, ns)["spec"]["replicas"] == 3,
        timeout=30,
        what="the replicas put back once the window passed",
    )
    eventually(lambda: ready()["status"] == "True", timeout=30, what="Ready again")


def test_a_deployment_relabelled_by_hand_is_labelled_back_not_deleted(op: Operator) -> None:
    op.ship(op.flavor("ads", version="v1"))
    [deployment] = op.deployments("production", "ads")
    name, uid = deployment["metadata"]["name"], deployment["metadata"]["uid"]
    # A flavor that sorts first would be planned first, and delete what it took for its own.
    label = "adroit.dev/flavor=a-ghost"
    kubectl("label", "deployment", name, "-n", op.production, label, "--overwrite")
    eventually(
        lambda: next(iter(op.deployments("production", "ads")), None),
        what="the flavor label to be put back",
    )
    time.sleep(2)
    [back] = op.deployments("production", "ads")
    assert back["metadata"]["uid"] == uid, "the same Deployment: it was not deleted"
    assert op.deployments("production", "a-ghost") == [], "nor run as another flavor's"


def test_flavor_at_zero_replicas_is_not_ready(op: Operator) -> None:
    op.ship(op.flavor("ads", version="v1"))
    [deployment] = op.deployments("production", "ads")
    name = deployment["metadata"]["name"]
    # Hold the operator back so the scale-down stays long enough to be seen.
    op.stop()
    kubectl("scale", "deployment", name, "-n", op.production, "--replicas=0")
    eventually(
        lambda: (
            op.get("deployment", name, op.production).get("status", {}).get("availableReplicas", 0)
            == 0
        ),
        what="the Deployment to scale down",
    )
    op.start()
    eventually(
        lambda: op.get("deployment", name, op.production)["spec"]["replicas"] == 3,
        what="the operator to put the replicas back",
    )


def test_a_revert_ships(op: Operator) -> None:
    first = op.ship(op.flavor("ads", version="v1"))
    second = op.ship(op.flavor("ads", version="v2"))
    third = op.ship(op.flavor("ads", version="v1"))
    assert len({first, second, third}) == 3
    assert op.model_version("production", "ads") == "v1"


def test_a_shadow_keeps_its_own_runtimes_image(op: Operator) -> None:
    manifest = op.flavor("ads", version="v1")
    manifest["spec"]["shadow"] = {
        "model": {"version": "v2", "runtime": "xgboost-1-7"},
        "mirrorPercent": 10,
    }
    op.ship(manifest)
    images = {
        d["metadata"]["labels"]["adroit.dev/role"]: d["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
        for d in op.deployments("production", "ads")
    }
    assert images == {"primary": IMAGE, "shadow": OTHER_IMAGE}
    op.stop()
    op.start()  # a restart looks at everything again
    time.sleep(3)
    still = {
        d["metadata"]["labels"]["adroit.dev/role"]: d["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
        for d in op.deployments("production", "ads")
    }
    assert still == images, "a pass over the Deployed world keeps the shadow's image"


def test_finished_trains_beyond_the_history_limit_are_deleted(tmp_path: Path) -> None:
    with own_operator(tmp_path, trainHistoryLimit=1) as op:
        op.start()
        first = op.ship(op.flavor("ads", version="v1"))
        second = op.ship(op.flavor("ads", version="v2"))
        eventually(
            lambda: [t["metadata"]["name"] for t in op.trains()] == [second],
            what=f"train {first} to be deleted",
        )
        revisions = kubectl(
            "get", "controllerrevisions", "-n", op.ns, "-o", "jsonpath={.items[*].metadata.name}"
        ).stdout.split()
        assert revisions == [f"ads-{op.get('flavor', 'ads')['status']['revision']}"], (
            "only the kept train's snapshot stays"
        )


def test_a_train_of_many_flavors_keeps_its_specs_in_controller_revisions(tmp_path: Path) -> None:
    count = 250  # more than the 200 cars a Train could hold before
    with own_operator(tmp_path, deployWindow=frozen_today()) as op:
        op.start()
        docs = [op.flavor(f"f{i:04d}", version="v1") for i in range(count)]
        # Changes that arrive within a quarter second of each other ride together: eight
        # writers at once, so that a loaded machine leaves no such gap between two writes.
        with ThreadPoolExecutor(8) as writers:
            list(
                writers.map(
                    lambda part: kubectl(
                        "apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(part)
                    ),
                    [docs[i::8] for i in range(8)],
                )
            )
        train = op.new_train()
        body = op.get("train", train)
        assert len(body["spec"]["cars"]) == count, "every change on one train"
        assert all("spec" not in car for car in body["spec"]["cars"])
        stored = json.loads(
            kubectl(
                "get", "train", train, "-n", op.ns, "-o", "json", "--show-managed-fields"
            ).stdout
        )
        managed = len(json.dumps(stored["metadata"].get("managedFields") or []))
        assert managed < 2_000, (
            f"the Train's managedFields take {managed} bytes: an entry per car would double "
            "its size (its car lists are atomic)"
        )
        size = len(json.dumps(stored))
        assert size < 100_000, f"the Train is {size} bytes"
        names = set(
            kubectl(
                "get",
                "controllerrevisions",
                "-n",
                op.ns,
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ).stdout.split()
        )
        assert {f"{c['flavor']}-{c['revision']}" for c in body["spec"]["cars"]} <= names
        snapshot: dict[str, Any] = op.get("controllerrevision", sorted(names)[0])
        assert snapshot["data"]["model"]["version"] == "v1"
        op.wait_phase(train, "Queued")  # the window is frozen: it waits, whole


@pytest.fixture
def newer_flavor_crd() -> Iterator[str]:
    """The Flavor CRD of a newer release, with a field this operator does not know; the
    CRD of this release is put back afterwards."""
    field_name = "futureField"
    path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/" + field_name
    patch = [{"op": "add", "path": path, "value": {"type": "string"}}]
    kubectl("patch", "crd", "flavors.adroit.dev", "--type=json", "-p", json.dumps(patch))
    try:
        yield field_name
    finally:
        kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=adroit-install",
            "-f",
            "crds/flavors.adroit.dev.yaml",
        )


def test_a_flavor_the_operator_cannot_read_keeps_what_runs(
    op: Operator, newer_flavor_crd: str
) -> None:
    train = op.ship(op.flavor("skew", version="v1"))
    running = {
        stage: [d["metadata"]["name"] for d in op.deployments(stage, "skew")]
        for stage in ("staging", "production")
    }
    newer = op.flavor("skew", version="v2")
    newer["spec"][newer_flavor_crd] = "set by a newer release"
    apply(newer, user="bob")

    def ready() -> dict[str, Any]:
        conditions = op.get("flavor", "skew").get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Ready"), {})

    eventually(lambda: ready().get("reason") == "SpecUnreadable", what="Ready to say why")
    assert newer_flavor_crd in ready()["message"], "the field it cannot read is named"
    assert ready()["status"] == "False"
    time.sleep(2)  # a pass or two: nothing may be taken down meanwhile
    for stage, names_ in running.items():
        assert [d["metadata"]["name"] for d in op.deployments(stage, "skew")] == names_
    assert [t["metadata"]["name"] for t in op.trains()] == [train], "no train forms"

    # Corrected, it is read again and its change rides a train.
    apply(op.flavor("skew", version="v2"), user="bob")
    assert op.new_train({train})
