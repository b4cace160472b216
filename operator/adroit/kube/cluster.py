"""What the operator learns about its cluster at start, to log it plainly."""

import asyncio
import os
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

DEFAULT_TIMEOUT = 30.0  # seconds, for every request that does not name its own


async def connect() -> client.ApiClient:
    """An API client from the in-cluster service account, else from KUBECONFIG, whose every
    request has a timeout (the generated client has none by default)."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await asyncio.to_thread(_load_kubeconfig)
    api = client.ApiClient()
    api.user_agent = f"adroit/{version('adroit')}"
    send = api.rest_client.request

    async def with_timeout(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = DEFAULT_TIMEOUT
        return await send(*args, **kwargs)

    api.rest_client.request = with_timeout  # type: ignore[method-assign]
    read_environment_once(api)
    return api


def _load_kubeconfig() -> None:
    """KUBECONFIG as it is now (the client library reads it only once, at import), on a loop
    of this worker thread's own: the library parses it with pure-Python YAML, 20 to 30 ms
    that would hold the event loop for a kubeconfig with its certificates."""
    asyncio.run(config.load_kube_config(config_file=os.environ.get("KUBECONFIG")))


def read_environment_once(api: client.ApiClient) -> None:
    """Proxy variables and .netrc are honoured, as kubectl does; when there are none, the
    client stops looking for them on every request."""
    if not _environment_matters():
        _stop_reading_environment(api)


def _environment_matters() -> bool:
    """Whether a proxy variable or a .netrc could change a request (aiohttp looks at both,
    in a worker thread, on every request, when told to trust the environment)."""
    proxies = {"http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy", "no_proxy"}
    if any(key.lower() in proxies for key in os.environ):
        return True
    netrc = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    return os.path.exists(netrc)


def _stop_reading_environment(api: client.ApiClient) -> None:
    """The client library's session, with the same connections, minus the per-request look at
    the environment: a thread hop and a file read on each of thousands of writes."""
    old: aiohttp.ClientSession = api.rest_client.pool_manager
    api.rest_client.pool_manager = aiohttp.ClientSession(
        connector=old.connector, trust_env=False, read_bufsize=2**21
    )
    old.detach()


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


async def whoami(api: client.ApiClient) -> str:
    """The user the API server knows this client as (a SelfSubjectReview)."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    answer = await api.call_api(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "POST",
        body=review,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    try:
        data = await answer.json()
    finally:
        answer.release()
    return str(((data.get("status") or {}).get("userInfo") or {}).get("username", ""))
