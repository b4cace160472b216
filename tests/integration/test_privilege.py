"""Least privilege: who may read the signing key, and who may write webhook configurations.

Users (bob, alice, carol) read no Secrets and write no webhook configuration;
the operator's ServiceAccount (deploy/rbac/operator.yaml) reads its own Secret,
gets and patches its own configuration only, and creates none: the operator
refuses to start without one. The test users' cluster-wide bindings go onto the
local cluster only.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from adroit.api.settings import parse_settings
from adroit.plan.webhooks import configuration_for, differences
from tests.integration.operator import Operator, own_operator
from tests.kube import NAMESPACE, REPO, kubectl

USERS = ["bob", "alice", "carol"]
WEBHOOK_CONFIGURATIONS = [
    "mutatingwebhookconfigurations.admissionregistration.k8s.io",
    "validatingwebhookconfigurations.admissionregistration.k8s.io",
]


def can(*args: str, user: str | None = None, as_: str | None = None) -> bool:
    extra = ["--as", as_] if as_ else []
    out = kubectl("auth", "can-i", *args, *extra, user=user, check=False).stdout.strip()
    assert out in ("yes", "no"), out
    return out == "yes"


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("verb", ["get", "list", "watch"])
@pytest.mark.parametrize("namespace", ["adroit", "the-tests-own"])
def test_no_user_reads_secrets(user: str, verb: str, namespace: str) -> None:
    # The tests' own namespace is named for each process: the same tests are collected in each.
    namespace = NAMESPACE if namespace == "the-tests-own" else namespace
    assert not can(verb, "secrets", "-n", namespace, user=user)
    assert not can(verb, "secrets/adroit-approval-key", "-n", namespace, user=user)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("verb", ["create", "update", "patch", "delete", "deletecollection"])
@pytest.mark.parametrize("resource", WEBHOOK_CONFIGURATIONS)
def test_no_user_writes_webhook_configurations(user: str, verb: str, resource: str) -> None:
    assert not can(verb, resource, user=user)
    assert not can(verb, f"{resource}/adroit-adroit", user=user)


@pytest.fixture
def op(tmp_path: Path) -> Iterator[Operator]:
    with own_operator(tmp_path) as running:
        rbac = running.rbac()
        kubectl("apply", "-f", "-", stdin=rbac)
        try:
            yield running
        finally:
            for kind in ("clusterrolebinding", "clusterrole"):
                for name in (f"{running.ns}-operator", f"{running.ns}-operator-stage"):
                    kubectl("delete", kind, name, "--ignore-not-found", check=False)


def account(op: Operator) -> str:
    return f"system:serviceaccount:{op.ns}:{op.ns}-operator"


def test_the_operator_may_patch_only_its_own_webhook_configuration(op: Operator) -> None:
    mwc = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
    own, other = f"{mwc}/adroit-{op.ns}", f"{mwc}/adroit-adroit"
    who = account(op)
    assert can("get", own, as_=who)
    assert can("patch", own, as_=who)
    for verb in ("update", "delete"):
        assert not can(verb, own, as_=who), f"the operator may not {verb} its configuration"
    assert not can("create", mwc, as_=who), "the operator creates no webhook configuration"
    assert not can("list", mwc, as_=who)
    for verb in ("get", "patch", "update", "delete"):
        assert not can(verb, other, as_=who), f"the operator may not {verb} another's"
    for verb in ("create", "patch"):
        assert not can(verb, WEBHOOK_CONFIGURATIONS[1], as_=who)


def test_only_the_operator_reads_its_signing_key(op: Operator) -> None:
    key = "secrets/adroit-approval-key"
    assert can("get", key, "-n", op.ns, as_=account(op))
    assert not can("list", "secrets", "-n", op.ns, as_=account(op)), "no other Secret"
    assert not can("get", "secrets/other", "-n", op.ns, as_=account(op))
    assert not can("get", key, "-n", op.staging, as_=account(op))
    for user in USERS:
        assert not can("get", key, "-n", op.ns, user=user)
    # Nothing else in deploy/ or the local cluster's bindings grants Secrets to anyone.
    manifests = [p for p in (REPO / "deploy").rglob("*.yaml") if "templates" not in p.parts]
    for path in [*manifests, REPO / "hack" / "cluster" / "test-users.yaml"]:
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                doc
                and doc.get("kind") in ("Role", "ClusterRole")
                and doc["metadata"]["name"] != ("adroit-operator")
            ):
                for rule in doc.get("rules", []):
                    assert "secrets" not in rule.get("resources", []), (path, rule)


def _service_account_kubeconfig(op: Operator, tmp_path: Path) -> Path:
    name = f"{op.ns}-operator"
    token = kubectl("create", "token", name, "-n", op.ns, "--duration=1h").stdout.strip()
    config = yaml.safe_load(kubectl("config", "view", "--raw", "--minify").stdout)
    config["users"] = [{"name": name, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = name
    path = tmp_path / "operator.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_without_its_configuration_the_operator_refuses_to_start(
    op: Operator, tmp_path: Path
) -> None:
    kubeconfig = _service_account_kubeconfig(op, tmp_path)
    op.path.write_text(yaml.safe_dump(op.settings))  # settings only: nothing installed
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adroit",
            "run",
            "--settings",
            str(op.path),
            "--metrics-bind-address=0",
            "--health-probe-bind-address=0",
        ],
        env=dict(os.environ, KUBECONFIG=str(kubeconfig)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert f"MutatingWebhookConfiguration/adroit-{op.ns} does not exist" in done.stderr
    assert "kubectl apply -f deploy/webhooks.yaml" in done.stderr
    hook = f"mutatingwebhookconfiguration/adroit-{op.ns}"
    assert kubectl("get", hook, check=False).returncode != 0, "and it created none"


def test_the_operator_changes_only_the_ca_bundle_of_what_was_installed(
    op: Operator, tmp_path: Path
) -> None:
    kubeconfig = _service_account_kubeconfig(op, tmp_path)
    hook = f"mutatingwebhookconfiguration/adroit-{op.ns}"
    op.write_settings()  # the administrator installs the configuration, as `make run` does
    installed = yaml.safe_load(kubectl("get", hook, "-o", "yaml").stdout)
    assert all("caBundle" not in h["clientConfig"] for h in installed["webhooks"])

    op.spawn(kubeconfig=kubeconfig)  # as its ServiceAccount; ready once caBundle is in
    patched = yaml.safe_load(kubectl("get", hook, "-o", "yaml").stdout)
    secret = op.get("secret", "adroit-approval-key")
    assert {h["clientConfig"]["caBundle"] for h in patched["webhooks"]} == {
        secret["data"]["tls.crt"]
    }
    settings = parse_settings(op.path.read_text(), str(op.path))
    assert differences(patched, configuration_for(settings)) == [], "nothing else changed"
    assert "Forbidden" not in op.log.read_text()
    assert "forbidden" not in op.log.read_text()

    op.kill()
    op.spawn(kubeconfig=kubeconfig)
    again = yaml.safe_load(kubectl("get", hook, "-o", "yaml").stdout)
    assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"], (
        "a restart writes nothing"
    )

    as_operator = ["--kubeconfig", str(kubeconfig)]
    other = configuration_for(settings)
    other["metadata"]["name"] = f"adroit-{op.ns}-other"
    refused = kubectl(*as_operator, "create", "-f", "-", stdin=yaml.safe_dump(other), check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr


def _kubeconfig_copy(tmp_path: Path, **cluster: str) -> Path:
    local = REPO / ".cluster" / "kubeconfig"
    config = yaml.safe_load(local.read_text())
    config["clusters"][0]["cluster"].update(cluster)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _is_local(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "hack" / "cluster" / "is-local.sh")],
        env=dict(os.environ, KUBECONFIG=str(kubeconfig)),
        capture_output=True,
        text=True,
    )


needs_local = pytest.mark.skipif(
    not (REPO / ".cluster" / "kubeconfig").exists(), reason="no local cluster in this checkout"
)


@needs_local
def test_the_local_cluster_is_recognised_by_server_and_authority(tmp_path: Path) -> None:
    assert _is_local(_kubeconfig_copy(tmp_path)).returncode == 0, "a copy names the same cluster"
    other = _kubeconfig_copy(tmp_path, server="https://127.0.0.1:1")
    assert _is_local(other).returncode == 1
    impostor = _kubeconfig_copy(tmp_path, **{"certificate-authority-data": "Zm9v"})
    assert _is_local(impostor).returncode == 1, "same address, another cluster (kind, say)"


@needs_local
def test_make_test_users_refuses_any_other_cluster(tmp_path: Path) -> None:
    other = _kubeconfig_copy(tmp_path, server="https://127.0.0.1:1")
    done = subprocess.run(
        ["make", "--no-print-directory", "test-users", f"KUBECONFIG={other}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "refused" in done.stderr
    assert "kubectl -n adroit create rolebinding" in done.stderr, "says how to do it elsewhere"
