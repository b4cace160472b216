"""What the operator learns about its cluster at start, to log it plainly."""

import os
from dataclasses import dataclass

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException


async def connect() -> client.ApiClient:
    """An API client from the in-cluster service account, else from KUBECONFIG."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # KUBECONFIG as it is now: the client library reads it only once, at import.
        await config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


@dataclass(frozen=True)
class ClusterFacts:
    server: str
    version: str
    missing_namespaces: tuple[str, ...]


async def describe_cluster(api: client.ApiClient, namespaces: list[str]) -> ClusterFacts:
    """The API server's address and version, and which of `namespaces` do not exist."""
    version = await client.VersionApi(api).get_code()
    core = client.CoreV1Api(api)
    missing = []
    for name in namespaces:
        try:
            await core.read_namespace(name)
        except ApiException as error:
            if error.status == 403:  # a least-privilege identity need not read namespaces
                break
            if error.status != 404:
                raise
            missing.append(name)
    return ClusterFacts(
        server=str(api.configuration.host),
        version=version.git_version,
        missing_namespaces=tuple(missing),
    )
