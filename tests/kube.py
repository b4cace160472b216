"""Drive a cluster the way a user does: kubectl, as a given person."""

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
# Every phase of a train that goes all the way, in order.
FULL_RIDE = ["Queued", "Staging", "Verifying", "AwaitingApproval", "Promoting", "Deployed"]

# The tests' own control namespace, created and deleted by tests/integration/conftest.py,
# so that nothing a person keeps in `adroit` is touched.
NAMESPACE = f"adroit-test-{uuid.uuid4().hex[:6]}"
# The groups of the test users, for clusters whose kubeconfig has no context
# per user (kind, a real cluster): there the admin impersonates them.
GROUPS = {"alice": "adroit:approvers", "carol": "adroit:approvers", "bob": "adroit:developers"}


def _contexts() -> set[str]:
    out = subprocess.run(
        ["kubectl", "config", "get-contexts", "-o", "name"], capture_output=True, text=True
    )
    return set(out.stdout.split())


def kubectl(
    *args: str, user: str | None = None, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run kubectl as `user` (default: the kubeconfig's current user, an admin)."""
    command = ["kubectl"]
    if user is not None:
        if user in _contexts():
            command += ["--context", user]
        else:
            command += ["--as", user]
            if user in GROUPS:
                command += ["--as-group", GROUPS[user]]
    command += list(args)
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result


def apply(
    manifest: dict[str, Any], *, user: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "-f", "-", user=user, stdin=yaml.safe_dump(manifest), check=check)


def get(kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return json.loads(kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)


def delete(kind: str, name: str, namespace: str = NAMESPACE) -> None:
    kubectl("delete", kind, name, "-n", namespace, "--ignore-not-found", "--wait=true")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def eventually(check: Callable[[], Any], *, timeout: float = 30, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


def flavor(name: str, **spec: Any) -> dict[str, Any]:
    """A valid Flavor manifest; keyword arguments replace parts of its spec."""
    body: dict[str, Any] = {
        "owner": "ads",
        "model": {
            "name": "ads_pclick_lines_v5",
            "version": "694a577a-4e2a-4aee-b81c-90ddc46d063b",
            "configPath": "ads_pclick_lines_v5/config.yaml",
            "runtime": "scikit-learn-2022-10",
        },
        "instances": {"memoryPerProcMiB": 1500, "minProdContainers": 3},
    }
    body.update(spec)
    return {
        "apiVersion": "adroit.dev/v1alpha1",
        "kind": "Flavor",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": body,
    }


@contextmanager
def refusing(
    name: str,
    rule: dict[str, Any],
    expression: str,
    message: str,
    namespace: str,
    probe: dict[str, Any],
) -> Iterator[None]:
    """A ValidatingAdmissionPolicy, bound to `namespace`, that refuses the writes `rule`
    matches unless `expression` holds: the API server itself says no, with `message`.
    In force once a server-side dry run of `probe` is refused; removed afterwards."""
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [rule]},
            "validations": [{"expression": expression, "message": message}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    apply(policy)
    apply(binding)
    try:
        eventually(
            lambda: (
                message
                in kubectl(
                    "create", "--dry-run=server", "-f", "-", stdin=json.dumps(probe), check=False
                ).stderr
            ),
            what=f"the policy {name} to be in force",
        )
        yield
    finally:
        kubectl(
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            name,
            check=False,
        )
