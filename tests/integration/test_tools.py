"""`kubectl adroit`, run through kubectl as its users run it, against the operator in-process."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.operator import Operator, own_operator
from tests.kube import GROUPS, _contexts, apply, eventually


def kubectl_adroit(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`kubectl adroit ARGS`: kubectl finds the plugin on PATH, where `make` puts the
    virtualenv's bin/ (and so does this, for a bare `pytest`)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["kubectl", "adroit", *args], capture_output=True, text=True, timeout=120, env=env, **kwargs
    )


def as_user(user: str | None) -> list[str]:
    """The plugin's flags to act as `user`: their context, else impersonation (kind, ...)."""
    if user is None:
        return []
    if user in _contexts():
        return ["--context", user]
    return ["--as", user, "--as-group", GROUPS[user]]


def adroit(op: Operator, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """`kubectl adroit ARGS -n NAMESPACE` as `user`."""
    return kubectl_adroit(*args, "-n", op.ns, *as_user(user))


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    with own_operator(tmp_path_factory.mktemp("tools")) as running:
        running.start()
        yield running


def waiting_train(op: Operator, flavor: str, author: str) -> str:
    known = {t["metadata"]["name"] for t in op.trains()}
    apply(op.flavor(flavor, version="v1"), user=author)
    train = op.new_train(known)
    op.wait_phase(train, "AwaitingApproval")
    return train


def test_status_shows_a_train_waiting_for_approval_bob_is_refused_alice_approves(
    op: Operator,
) -> None:
    train = waiting_train(op, "ads", author="bob")

    status = adroit(op, "status", user="bob")
    assert status.returncode == 0, status.stderr
    text = status.stdout
    print(text)  # the README's sample
    assert "Deploy window  open" in text
    assert f"{train}  AwaitingApproval since" in text
    assert "engineer bob, 1 car(s); staging: 1 Verified; production: 1 Pending" in text
    assert "may approve: anyone with the verb approve on trains but bob" in text
    assert f"approve: kubectl adroit approve {train}" in text
    assert "Pending changes (1 of 1)" in text
    assert f"ads  OnTrain: revision {op.get('flavor', 'ads')['status']['revision']}" in text
    assert "\x1b[" not in text, "no colours when the output is not a terminal"

    data = json.loads(adroit(op, "status", "-o", "json", user="bob").stdout)
    assert data["onTracks"]["name"] == train
    assert data["onTracks"]["phase"] == "AwaitingApproval"

    refused = adroit(op, "approve", train, user="bob")
    assert refused.returncode == 3
    assert 'User "bob" cannot patch resource "trains"' in refused.stderr
    assert "ClusterRole adroit-approver" in refused.stderr
    assert f"ask an approver to run: kubectl adroit approve {train} -n {op.ns}" in refused.stderr
    assert op.phase(train) == "AwaitingApproval"

    approved = adroit(op, "approve", train, user="alice")
    assert approved.returncode == 0, approved.stderr
    assert f"train/{train} annotated adroit.dev/approved=true" in approved.stdout
    op.wait_phase(train, "Deployed")

    why = adroit(op, "why", "ads", user="bob")
    assert why.returncode == 0, why.stderr
    assert "Shipped" in why.stdout
    assert f"runs in production (train {train})" in why.stdout
    described = adroit(op, "describe", train, user="bob").stdout
    assert "Promoting         Approved (by alice): approved by alice" in described
    assert "ads   " in described
    listed = yaml.safe_load(adroit(op, "get", "trains", "-o", "yaml", user="bob").stdout)
    assert [(t["name"], t["phase"]) for t in listed] == [(train, "Deployed")]


def test_the_webhooks_refusal_is_printed_and_an_abort_stops_the_train(op: Operator) -> None:
    train = waiting_train(op, "search", author="alice")

    why = adroit(op, "why", "search", "-o", "json", user="carol")
    assert json.loads(why.stdout)["where"] == "AwaitingApproval"
    refused = adroit(op, "approve", train, user="alice")
    assert refused.returncode == 3
    assert "denied the request" in refused.stderr
    assert f"alice drives train {train} and may not approve it (separation of duties)" in (
        refused.stderr
    )
    assert "ask another approver" in refused.stderr

    aborted = adroit(op, "abort", train, user="alice")
    assert aborted.returncode == 0, aborted.stderr
    op.wait_phase(train, "Aborted")
    why = adroit(op, "why", "search", user="alice").stdout
    assert f"rode train {train}, which ended Aborted" in why


def test_status_watch_draws_again_when_a_train_forms(op: Operator) -> None:
    command = ["kubectl", "adroit", "status", "--watch", "-o", "json", "-n", op.ns]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    watch = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())
        known = {t["name"] for t in first["recent"]}
        apply(op.flavor("rerank", version="v1"), user="bob")
        seen: list[str | None] = []

        def next_shows_a_new_train() -> bool:
            assert watch.stdout is not None
            data = json.loads(watch.stdout.readline())
            moving = data["onTracks"]
            seen.append(moving and moving["name"])
            return moving is not None and moving["name"] not in known

        eventually(next_shows_a_new_train, timeout=60, what="a drawing with the new train")
    finally:
        watch.terminate()
        watch.wait(timeout=10)


def test_exit_codes_scripts_can_use(op: Operator) -> None:
    missing = adroit(op, "describe", "no-such-train")
    assert missing.returncode == 1
    assert f"train no-such-train not found in namespace {op.ns}" in missing.stderr
    unknown = kubectl_adroit("status", "--context", "nobody")
    assert unknown.returncode == 4
    assert "context 'nobody' is not in the kubeconfig" in unknown.stderr
    usage = kubectl_adroit("frobnicate")
    assert usage.returncode == 2


def test_exec_credential_plugins_and_impersonation(op: Operator, tmp_path: Path) -> None:
    """Kubeconfigs of cloud clusters get tokens from a command; kubectl's --as works too."""
    config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    if not any(u["name"] == "alice" and "token" in u["user"] for u in config["users"]):
        pytest.skip("this kubeconfig has no token for alice to hand out through a plugin")
    token = next(u["user"]["token"] for u in config["users"] if u["name"] == "alice")
    plugin = tmp_path / "credential-plugin"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token},
    }
    plugin.write_text(f"#!/bin/sh\necho '{json.dumps(credential)}'\n")
    plugin.chmod(0o755)
    exec_user = {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}
    config["users"].append({"name": "by-plugin", "user": {"exec": exec_user}})
    cluster = next(c["context"]["cluster"] for c in config["contexts"] if c["name"] == "alice")
    config["contexts"].append(
        {"name": "plugin", "context": {"cluster": cluster, "user": "by-plugin"}}
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    listed = adroit(op, "get", "trains", "--kubeconfig", str(kubeconfig), "--context", "plugin")
    assert listed.returncode == 0, listed.stderr
    as_bob = adroit(op, "approve", "no-such-train", "--as", "bob", "--as-group", GROUPS["bob"])
    assert as_bob.returncode == 3
    assert 'User "bob" cannot patch resource "trains"' in as_bob.stderr
