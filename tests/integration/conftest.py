import subprocess
from collections.abc import Iterator

import pytest

from tests.integration.operator import Webhook
from tests.integration.users import bind_cluster_wide, bind_in, is_local_cluster
from tests.kube import NAMESPACE, eventually, kubectl


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The outage tests stop the control plane: run them after every other test."""
    items.sort(key=lambda item: item.get_closest_marker("outage") is not None)


@pytest.fixture(scope="session", autouse=True)
def cluster() -> Iterator[None]:
    """The cluster KUBECONFIG points at, with Adroit's CRDs installed (`make install`)."""
    try:
        kubectl("get", "--raw", "/readyz")
    except (AssertionError, subprocess.TimeoutExpired) as error:
        pytest.fail(
            f"no Kubernetes API server: {error}\n"
            "Run the tests with `make test` (it starts the local cluster), or run "
            "`make cluster-up` and export KUBECONFIG=.cluster/kubeconfig.",
            pytrace=False,
        )
    crds = kubectl("get", "crd", "flavors.adroit.dev", "trains.adroit.dev", check=False)
    if crds.returncode != 0:
        pytest.fail("Adroit's CRDs are not installed: run `make install`", pytrace=False)
    # A fresh API server answers 429 until the watch cache of new CRDs is ready.
    eventually(
        lambda: (
            kubectl(
                "get",
                "--raw",
                "/apis/adroit.dev/v1alpha1/trains?watch=1&timeoutSeconds=1",
                check=False,
            ).returncode
            == 0
        ),
        timeout=120,
        what="Trains to be watchable",
    )
    # The test users' rights: cluster-wide on the local cluster (which has them already),
    # on any other cluster only in the namespaces the tests create (tests/integration/users.py).
    if is_local_cluster():
        bind_cluster_wide()
    kubectl("create", "namespace", NAMESPACE)
    bind_in(NAMESPACE)
    yield
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A local Slack-compatible receiver for the operator's notifications."""
    hook = Webhook()
    yield hook
    hook.close()
