"""The webhook configuration people install, and the only change the operator makes to it."""

import base64
import subprocess
import sys

import yaml

from adroit.api.settings import parse_settings
from adroit.plan.webhooks import ca_bundle_patch, configuration_for, differences
from tests.kube import REPO

LOCAL = parse_settings((REPO / "settings" / "local.yaml").read_text(), "local.yaml")


def test_deploy_webhooks_yaml_is_rendered_from_the_plan() -> None:
    script = REPO / "hack" / "cluster" / "webhook-configuration.py"
    out = REPO / "deploy" / "webhooks.yaml"
    done = subprocess.run(
        [sys.executable, str(script), "--write", str(out), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    manifest = yaml.safe_load(out.read_text())
    assert manifest["metadata"]["name"] == "adroit-adroit"
    for hook in manifest["webhooks"]:
        assert hook["clientConfig"]["service"]["name"] == "adroit-webhook"
        assert "caBundle" not in hook["clientConfig"], "the operator fills it in"


def test_local_settings_reach_the_operator_on_loopback() -> None:
    urls = [h["clientConfig"]["url"] for h in configuration_for(LOCAL)["webhooks"]]
    assert urls == ["https://127.0.0.1:9443/trains", "https://127.0.0.1:9443/flavors"]


def test_the_patch_sets_only_ca_bundles_guarded_by_name() -> None:
    installed = configuration_for(LOCAL)
    patch = ca_bundle_patch(installed, b"CERT")
    assert {op["path"].rsplit("/", 1)[-1] for op in patch if op["op"] != "test"} == {"caBundle"}
    assert [op["value"] for op in patch if op["op"] == "test"] == [
        "trains.adroit.adroit.dev",
        "flavors.adroit.adroit.dev",
    ]


def test_a_restart_with_the_same_certificate_patches_nothing() -> None:
    assert ca_bundle_patch(configuration_for(LOCAL, b"CERT"), b"CERT") == []
    assert len(ca_bundle_patch(configuration_for(LOCAL, b"OLD"), b"CERT")) == 4


def test_differences_ignore_the_ca_bundle_and_name_what_differs() -> None:
    wanted = configuration_for(LOCAL)
    assert differences(configuration_for(LOCAL, b"CERT"), wanted) == []
    moved = configuration_for(LOCAL)
    moved["webhooks"][0]["clientConfig"]["url"] = "https://127.0.0.1:1/trains"
    del moved["webhooks"][1]
    found = differences(moved, wanted)
    assert any("clientConfig" in d and "trains." in d for d in found)
    assert any("flavors.adroit.adroit.dev is missing" in d for d in found)
    assert base64.b64encode(b"CERT").decode() not in " ".join(found)
