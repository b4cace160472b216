"""Installing Adroit: `kubectl apply -k deploy/` and the Helm chart in deploy/chart/.

Both are rendered and checked against the API server (server-side dry run), and the
operator runs as the chart's ServiceAccount, in a pod's view of the filesystem (read-only
but for the webhook's certificate directory), through a whole life of a flavor: the
RBAC in deploy/ is enough, and every right in it is used.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from adroit.api.crd import render_crds
from adroit.api.settings import Settings, parse_settings
from adroit.plan.webhooks import configuration_for, differences
from tests.integration.api_proxy import CountingProxy
from tests.integration.operator import Operator, free_port, own_operator
from tests.integration.tools import tool
from tests.kube import REPO, apply, eventually, kubectl

DEPLOY = REPO / "deploy"
CHART = DEPLOY / "chart"
HELM_LABELS = ("app.kubernetes.io/instance", "helm.sh/chart")


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def kustomized(path: Path = DEPLOY) -> list[dict[str, Any]]:
    return docs(kubectl("kustomize", str(path)).stdout)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tool("HELM")), *args], capture_output=True, text=True, timeout=120)


def charted(namespace: str = "adroit", *values: str) -> list[dict[str, Any]]:
    done = helm(
        "template", "adroit", str(CHART), "--namespace", namespace, "--include-crds", *values
    )
    assert done.returncode == 0, done.stderr
    return docs(done.stdout)


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def settings_of(objs: list[dict[str, Any]]) -> Settings:
    config = one(objs, "ConfigMap", "adroit-settings")
    return parse_settings(config["data"]["settings.yaml"], "the settings ConfigMap")


RENDERERS = {"kustomize": kustomized, "helm": charted}


# --- what is installed -----------------------------------------------------------------


def test_the_kustomization_installs_everything() -> None:
    objs = kustomized()
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objs}
    for namespace in ("adroit", "adroit-staging", "adroit-production"):
        assert ("Namespace", namespace) in kinds
    crds = {o["metadata"]["name"] for o in objs if o["kind"] == "CustomResourceDefinition"}
    assert crds == {name.removesuffix(".yaml") for name in render_crds()}, (
        "crds/Kustomization lists every generated CRD"
    )
    for role in ("adroit-viewer", "adroit-developer", "adroit-approver", "adroit-operator"):
        assert ("ClusterRole", role) in kinds
    for kind in ("ServiceAccount", "Deployment", "PodDisruptionBudget"):
        assert (kind, "adroit-operator") in kinds
    assert ("Service", "adroit-webhook") in kinds
    assert ("MutatingWebhookConfiguration", "adroit-adroit") in kinds


@pytest.mark.parametrize("render", RENDERERS)
def test_the_webhook_configuration_is_the_one_for_the_installed_settings(render: str) -> None:
    objs = RENDERERS[render]()
    settings = settings_of(objs)
    hook = one(objs, "MutatingWebhookConfiguration")
    assert differences(hook, configuration_for(settings)) == []
    service = one(objs, "Service", "adroit-webhook")
    assert settings.admission.service is not None
    assert service["metadata"]["namespace"] == settings.admission.service.namespace
    assert service["spec"]["ports"][0]["port"] == settings.admission.service.port


def _flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} in {args}"
    return values[0]


@pytest.mark.parametrize("render", RENDERERS)
def test_the_container_is_declared_as_it_runs(render: str) -> None:
    deployment = one(RENDERERS[render](), "Deployment", "adroit-operator")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    user = pod["securityContext"]["runAsUser"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(user, int)
    assert user > 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    registry = container["image"].split("/")[0]
    assert "." in registry or ":" in registry, f"the image names its registry: {container['image']}"

    # The one writable path is an emptyDir, and it is where the webhook's certificate goes.
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
    assert [m["mountPath"] for m in writable] == [_flag(container["args"], "--webhook-cert-dir")]
    assert "emptyDir" in volumes[writable[0]["name"]]
    settings = _flag(container["args"], "--settings")
    (mount,) = [m for m in container["volumeMounts"] if settings.startswith(m["mountPath"] + "/")]
    assert volumes[mount["name"]]["configMap"]["name"] == "adroit-settings"

    # Metrics on 8080, probes on 8081, as kubebuilder operators serve them.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == 8080
    assert ports["health"] == 8081
    assert _flag(container["args"], "--metrics-bind-address") == ":8080"
    assert _flag(container["args"], "--health-probe-bind-address") == ":8081"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert ports["webhook"] == settings_of(RENDERERS[render]()).admission.port
    resources = container["resources"]
    assert resources["requests"]["memory"]
    assert resources["limits"]["memory"]


@pytest.mark.parametrize("render", RENDERERS)
def test_the_api_server_accepts_what_is_rendered(render: str) -> None:
    manifest = yaml.safe_dump_all(RENDERERS[render]())
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifest)


def test_helm_lint_finds_nothing() -> None:
    done = helm("lint", str(CHART), "--strict")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout, done.stdout
    assert "[ERROR]" not in done.stdout, done.stdout


def _normalized(objs: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    out = {}
    for obj in objs:
        obj = json.loads(json.dumps(obj))
        for label in HELM_LABELS:
            obj["metadata"].get("labels", {}).pop(label, None)
        if obj["kind"] == "ConfigMap":
            text = obj["data"]["settings.yaml"]
            obj["data"]["settings.yaml"] = parse_settings(text, "settings").model_dump()
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["spec"]["containers"][0].pop("imagePullPolicy", None)
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        out[key] = obj
    return out


def test_the_chart_installs_what_the_kustomization_does() -> None:
    from_chart, from_kustomize = _normalized(charted()), _normalized(kustomized())
    # The release's namespace is created by `helm install --create-namespace`.
    del from_kustomize[("Namespace", "", "adroit")]
    assert sorted(from_chart) == sorted(from_kustomize)
    for key, obj in from_kustomize.items():
        assert from_chart[key] == obj, key


def test_the_chart_takes_its_values_and_its_namespaces() -> None:
    values = {
        "image": {"repository": "registry.example.org/ml/adroit", "tag": "1.2.3"},
        "replicas": 2,
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "settings": {
            "namespaces": {"staging": "ml-staging", "production": "ml-production"},
            "traffic": {"router": "gateway", "mirrorCapPercent": 20},
            "runtimes": {"triton-24": "registry.example.org/ml/triton:24.01"},
            "defaultRuntime": "triton-24",
        },
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    }
    objs = charted("ml", *_values_flags(values))
    settings = settings_of(objs)
    assert (settings.namespaces.control, settings.namespaces.staging) == ("ml", "ml-staging")
    assert settings.traffic.mirror_cap_percent == 20
    assert list(settings.runtimes) == ["triton-24"], "the values' catalog, not added to"
    assert settings.admission.service is not None
    assert settings.admission.service.namespace == "ml"
    assert differences(one(objs, "MutatingWebhookConfiguration"), configuration_for(settings)) == []

    deployment = one(objs, "Deployment")
    assert deployment["metadata"]["namespace"] == "ml"
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.org/ml/adroit:1.2.3"
    assert container["resources"] == values["resources"]

    bindings = [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert {b["metadata"].get("namespace") for b in bindings} == {
        None,
        "ml",
        "ml-staging",
        "ml-production",
    }
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "adroit-operator", "namespace": "ml"}
        ]
        assert binding["roleRef"]["name"] in {
            o["metadata"]["name"] for o in objs if o["kind"] == binding["roleRef"]["kind"]
        }
    names = [
        n for o in objs if "rules" in o for r in o["rules"] for n in r.get("resourceNames", [])
    ]
    assert "adroit-ml" in names
    assert "adroit-adroit" not in names

    monitor = one(objs, "ServiceMonitor")
    assert monitor["metadata"]["namespace"] == "ml"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["ml"]}
    _scrapes_the_operator(objs)


def _values_flags(values: dict[str, Any]) -> list[str]:
    return [
        arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")
    ]


def test_the_chart_refuses_a_control_namespace_other_than_its_own() -> None:
    done = helm(
        "template", "adroit", str(CHART), "--namespace", "ml",
        "--set", "settings.namespaces.control=adroit",
    )  # fmt: skip
    assert done.returncode != 0
    assert "install into the control namespace (--namespace adroit)" in done.stderr


def _scrapes_the_operator(objs: list[dict[str, Any]]) -> None:
    """The ServiceMonitor selects the metrics Service, which selects the operator's metrics."""
    monitor, service = one(objs, "ServiceMonitor"), one(objs, "Service", "adroit-metrics")
    pod = one(objs, "Deployment")["spec"]["template"]
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [port["name"]]
    container_ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert container_ports[port["targetPort"]] == 8080


def test_the_monitoring_component_adds_a_service_monitor(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY, tmp_path)],
                "components": [os.path.relpath(DEPLOY / "components" / "monitoring", tmp_path)],
            }
        )
    )
    objs = kustomized(tmp_path)
    _scrapes_the_operator(objs)
    plain = [
        o for o in objs if o["kind"] != "ServiceMonitor"
    ]  # its CRD is the Prometheus Operator's
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(plain))


# --- the operator as the chart's ServiceAccount, on a read-only filesystem --------------

# What the operator may be refused without harm: it reads its namespaces to warn of missing
# ones, and stops asking at the first 403 (a least-privilege identity reads no namespaces).
TOLERATED_REFUSALS = {("get", "", "namespaces")}
# What every authenticated identity may do (ClusterRole system:basic-user): learn who it is.
EVERYONE_MAY = {("create", "authentication.k8s.io", "selfsubjectreviews")}
# Rights granted for a feature this flavor's life does not use, each with where it is used.
USED_ELSEWHERE = {
    ("get", "", "configmaps"): "prediction bodies from ConfigMaps (tests/integration/"
    "test_verification.py, bodyFrom)",
}
# The pod's view of its filesystem, built in a private mount namespace (unshare): the
# service account's token, the settings and the emptyDir on tmpfs, everything else (the
# checkout, HOME, /tmp) remounted read-only, and a check that it is so before the operator
# starts.
SANDBOX = r"""
set -eu
mount -t tmpfs -o size=1m tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount /run/adroit
cp "$SA"/token "$SA"/ca.crt "$SA"/namespace /run/secrets/kubernetes.io/serviceaccount/
cp "$SETTINGS_FILE" /run/adroit/settings.yaml
mkdir -p "$CERT_DIR"  # on the host: an empty directory, the mount point of the emptyDir
mount -t tmpfs -o size=1m tmpfs "$CERT_DIR"
for point in $(awk '{print $2}' /proc/self/mounts); do
  [ "$point" = "$CERT_DIR" ] || mount -o remount,bind,ro "$point" 2>/dev/null || true
done
for dir in "$HOME" "$PWD" / /tmp /var/tmp /dev/shm /run; do
  if touch "$dir/.adroit-write-probe" 2>/dev/null; then echo "still writable: $dir" >&2; exit 97; fi
done
touch "$CERT_DIR/.probe" && rm "$CERT_DIR/.probe"
exec "$@"
"""


def _can_sandbox() -> bool:
    probe = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "t", "/mnt"]
    return shutil.which("unshare") is not None and subprocess.run(probe).returncode == 0


def _rights(objs: list[dict[str, Any]], account: str, namespace: str) -> set[tuple[str, ...]]:
    """(namespace or "*", verb, group, resource) for every rule bound to the ServiceAccount."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objs}
    rights = set()
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        if {"kind": "ServiceAccount", "name": account, "namespace": namespace} not in binding[
            "subjects"
        ]:
            continue
        where = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], where if ref["kind"] == "Role" else None, ref["name"])]
        for rule in role["rules"]:
            for verb in rule["verbs"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        rights.add((where or "*", verb, group, resource))
    return rights


@pytest.fixture
def chart_rbac(tmp_path: Path) -> Iterator[tuple[Operator, list[dict[str, Any]]]]:
    """An Operator's namespaces with the chart's ServiceAccount and RBAC applied there."""
    with own_operator(tmp_path, trainHistoryLimit=1) as op:
        values = {"namespaces": {"staging": op.staging, "production": op.production}}
        rendered = charted(
            op.ns,
            "--set",
            "createStageNamespaces=false,userRoles=false",
            "--set-json",
            f"settings={json.dumps(values)}",
        )
        rbac = [
            o
            for o in rendered
            if o["kind"]
            in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
        ]
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
        try:
            yield op, rendered
        finally:
            for obj in rbac:
                if "namespace" not in obj["metadata"]:
                    kind, name = obj["kind"].lower(), obj["metadata"]["name"]
                    kubectl("delete", kind, name, "--ignore-not-found", check=False)


def _cluster() -> tuple[str, bytes]:
    config = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = config["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = Path(cluster["certificate-authority"]).read_bytes()
    return cluster["server"], ca


def _start_in_a_pod_view(
    op: Operator, deployment: dict[str, Any], proxy: CountingProxy, tmp_path: Path
) -> subprocess.Popen[bytes]:
    """`adroit run` with the Deployment's arguments, as its pod would run it (the settings
    from /run/adroit instead of the ConfigMap's mount, which needs no writable /etc)."""
    sa = tmp_path / "serviceaccount"
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text(
        kubectl("create", "token", "adroit-operator", "-n", op.ns, "--duration=1h").stdout.strip()
    )
    (sa / "ca.crt").write_bytes(proxy.ca_file.read_bytes())
    (sa / "namespace").write_text(op.ns)
    op.write_settings()  # and the webhook configuration, with a URL (no Service here)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [a for a in container["args"] if not a.startswith("--settings=")]
    args.append("--settings=/run/adroit/settings.yaml")
    # Metrics and probes: on free loopback ports here, once `adroit run` has those flags.
    known = subprocess.run(
        [sys.executable, "-m", "adroit", "run", "--help"], capture_output=True, text=True
    ).stdout
    bind = ("--metrics-bind-address", "--health-probe-bind-address")
    args = [a for a in args if a.split("=")[0] not in bind]
    args += [f"{flag}=127.0.0.1:{free_port()}" for flag in bind if flag in known]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(REPO),
        "SA": str(sa),
        "SETTINGS_FILE": str(op.path),
        "CERT_DIR": _flag(container["args"], "--webhook-cert-dir"),
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(proxy.port),
    }
    with op.log.open("ab") as log:
        process = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                SANDBOX,
                "sandbox",
                sys.executable,
                "-m",
                "adroit",
                *args,
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    op.processes["pod"] = process  # op.kill() and op.cleanup() kill it, whatever happens
    eventually(
        lambda: process.poll() is not None or (op.admission_enabled() and _has_ca(op)),
        timeout=60,
        what="the operator to serve its webhook",
    )
    assert process.poll() is None, op.log.read_text()
    return process


def _left_over_virtual_service(namespace: str) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/managed-by": "adroit",
        "adroit.dev/flavor": "ads",
        "adroit.dev/stage": "production",
    }
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "ads", "namespace": namespace, "labels": labels},
        "spec": {"hosts": ["ads"], "http": [{"route": [{"destination": {"host": "ads"}}]}]},
    }


def _has_ca(op: Operator) -> bool:
    out = kubectl("get", f"mutatingwebhookconfiguration/adroit-{op.ns}", "-o", "json").stdout
    return all(h["clientConfig"].get("caBundle") for h in json.loads(out)["webhooks"])


def test_the_operator_ships_a_flavor_as_the_charts_account_on_a_read_only_filesystem(
    chart_rbac: tuple[Operator, list[dict[str, Any]]], tmp_path: Path
) -> None:
    if not _can_sandbox():
        pytest.skip("unshare cannot make a private mount namespace here (needs root)")
    op, rendered = chart_rbac
    server, ca = _cluster()
    (tmp_path / "cluster-ca.crt").write_bytes(ca)
    proxy = CountingProxy(server, tmp_path / "cluster-ca.crt", tmp_path)
    try:
        # A route of the other router, as left behind by a change of `traffic.router`.
        apply(_left_over_virtual_service(op.production))
        process = _start_in_a_pod_view(op, one(rendered, "Deployment"), proxy, tmp_path)
        # A flavor's whole life: shipped, changed (blue-green: the old Deployment goes),
        # deleted (a removal train takes it out of production, then the finalizer goes).
        first = op.ship(op.flavor("ads", version="v1"))
        op.ship(op.flavor("ads", version="v2"))
        assert op.model_version("production", "ads") == "v2"
        eventually(lambda: first not in {t["metadata"]["name"] for t in op.trains()},
                   what="the oldest train to go (trainHistoryLimit 1)")  # fmt: skip
        known = {t["metadata"]["name"] for t in op.trains()}
        kubectl("delete", "flavor", "ads", "-n", op.ns, "--wait=false", user="bob")
        removal = op.new_train(known)
        op.wait_phase(removal, "AwaitingApproval")
        op.approve(removal)
        op.wait_phase(removal, "Deployed")
        eventually(
            lambda: kubectl("get", "flavor", "ads", "-n", op.ns, check=False).returncode != 0,
            what="the Flavor to be gone",
        )
        assert op.deployments("production", "ads") == []
        eventually(
            lambda: (
                removal in {t["metadata"]["name"] for t in op.trains()} and len(op.trains()) == 1
            ),
            what="older trains to go",
        )
        assert kubectl("get", "virtualservice", "ads", "-n", op.production, check=False).returncode
        assert process.poll() is None, "it still runs"

        # The pod starts again after the webhook's host names changed (a Service renamed):
        # its certificate is issued again, into a fresh emptyDir.
        op.kill()
        hosts = base64.b64encode(b"adroit-webhook.old.svc").decode()
        patch = json.dumps({"data": {"hosts": hosts}})
        kubectl("patch", "secret", "adroit-approval-key", "-n", op.ns, "-p", patch)
        kubectl("patch", f"mutatingwebhookconfiguration/adroit-{op.ns}", "--type=json", "-p",
                '[{"op": "remove", "path": "/webhooks/0/clientConfig/caBundle"}]')  # fmt: skip
        process = _start_in_a_pod_view(op, one(rendered, "Deployment"), proxy, tmp_path)
        secret = op.get("secret", "adroit-approval-key")
        assert base64.b64decode(secret["data"]["hosts"]) == b"127.0.0.1"
    finally:
        op.kill()
        proxy.close()
    log = op.log.read_text()
    assert "forbidden" not in log.lower(), log
    assert "still writable" not in log
    assert "Read-only file system" not in log, "it wrote outside its emptyDir"

    seen = list(proxy.seen)
    refused = {(a.verb, a.group, a.resource) for a in seen if a.status == 403}
    assert refused <= TOLERATED_REFUSALS, refused
    used = {
        (a.namespace or "*", a.verb, a.group, a.resource)
        for a in seen
        if a.status != 403 and (a.verb, a.group, a.resource) not in EVERYONE_MAY
    }
    rights = _rights(rendered, "adroit-operator", op.ns)
    granted_in = {(ns, v, g, r) for ns, v, g, r in rights if ns != "*"}
    cluster_wide = {(v, g, r) for ns, v, g, r in rights if ns == "*"}
    unused = {
        right
        for right in rights
        if right[1:] not in USED_ELSEWHERE
        and not any((u[1:] == right[1:]) and (right[0] == "*" or u[0] == right[0]) for u in used)
    }
    assert not unused, f"granted, never used: {sorted(unused)}"
    beyond = {u for u in used if u not in granted_in and u[1:] not in cluster_wide}
    assert not beyond, f"used beyond the grants: {sorted(beyond)}"


def test_the_image_runs_as_the_deployment_says() -> None:
    lines = (REPO / "Containerfile").read_text().splitlines()
    user = [line.split()[1] for line in lines if line.startswith("USER ")][-1]
    workdir = [line.split()[1] for line in lines if line.startswith("WORKDIR ")][-1]
    removed = [w for line in lines if line.startswith("RUN ") for w in line.split() if w == workdir]
    assert not removed, f"the last WORKDIR {workdir} exists in the image"
    pod = one(kustomized(), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{pod['runAsUser']}:{pod['runAsGroup']}", "numeric, non-root, the same"


@pytest.mark.parametrize("router", ["gateway", "istio"])
def test_the_routes_rights_follow_the_router(router: str, tmp_path: Path) -> None:
    """The chart (settings.traffic.router) and the kustomize component grant the same."""
    component = [os.path.relpath(DEPLOY / "components" / "istio", tmp_path)]
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY, tmp_path)],
                "components": component if router == "istio" else [],
            }
        )
    )
    roles = {
        render: next(
            o
            for o in objs
            if o["kind"] == "Role" and o["metadata"]["namespace"] == "adroit-production"
        )
        for render, objs in (
            ("kustomize", kustomized(tmp_path)),
            ("helm", charted("adroit", "--set", f"settings.traffic.router={router}")),
        )
    }
    assert roles["kustomize"]["rules"] == roles["helm"]["rules"]
    writes = {
        resource
        for rule in roles["helm"]["rules"]
        if "create" in rule["verbs"]
        for resource in rule["resources"]
    }
    route = {"gateway": "httproutes", "istio": "virtualservices"}[router]
    assert writes == {"poddisruptionbudgets", route}
