"""The test users' rights: cluster-wide on the local cluster only, else in the tests' namespaces.

hack/cluster/test-users.yaml binds the test groups (alice and carol approve, bob
develops) cluster-wide. That is fine on the local cluster, whose users exist
nowhere else, and wrong anywhere else: there the same bindings are made as
RoleBindings in each namespace the tests create, and go with it.
"""

import functools
import subprocess
from typing import Any

import yaml

from tests.kube import REPO, kubectl

TEST_USERS = REPO / "hack" / "cluster" / "test-users.yaml"


@functools.cache
def is_local_cluster() -> bool:
    """KUBECONFIG names the local cluster of hack/cluster (same server, same CA)."""
    done = subprocess.run(
        [str(REPO / "hack" / "cluster" / "is-local.sh")], capture_output=True, text=True
    )
    return done.returncode == 0


def _bindings() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(TEST_USERS.read_text()) if doc]


def bind_cluster_wide() -> None:
    """The local cluster's bindings (up.sh made them already; applying again is harmless)."""
    assert is_local_cluster(), "test-users.yaml is for the local cluster only"
    kubectl("apply", "--server-side", "--field-manager=adroit-local", "-f", str(TEST_USERS))


def bind_in(namespace: str) -> None:
    """The same bindings as RoleBindings in one of the tests' namespaces, on any other cluster."""
    if is_local_cluster():
        return
    for binding in _bindings():
        binding["kind"] = "RoleBinding"
        binding["metadata"] = {"name": binding["metadata"]["name"], "namespace": namespace}
        kubectl(
            "apply",
            "--server-side",
            "--field-manager=adroit-tests",
            "-f",
            "-",
            stdin=yaml.safe_dump(binding),
        )
