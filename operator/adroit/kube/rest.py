"""Plain JSON requests to the API server, each with a timeout, and the paths of every kind we use.

The generated client's typed methods build Python objects we never need and
take no default timeout; the reconciler's reads come from watch caches, and
its writes are a handful of verbs on a handful of kinds, so one request
function does them all.
"""

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from adroit.api import names
from adroit.kube.metrics import API_REQUESTS

REQUEST_TIMEOUT = 30.0  # seconds; no request may hang a pass
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# What a request can fail with that is not a bug: the API server's answer, a connection
# refused, dropped or cut short, a timeout.
FAILURES = (ApiException, aiohttp.ClientError, TimeoutError, OSError)


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API: /api/v1 or /apis/GROUP/VERSION, and its plural."""

    prefix: str
    plural: str

    def path(self, namespace: str, name: str | None = None, sub: str | None = None) -> str:
        path = f"/{self.prefix}/namespaces/{namespace}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if sub is not None:
            path += f"/{sub}"
        return path


KINDS = {
    "Deployment": Kind("apis/apps/v1", "deployments"),
    "ControllerRevision": Kind("apis/apps/v1", "controllerrevisions"),
    "Service": Kind("api/v1", "services"),
    "Pod": Kind("api/v1", "pods"),
    "ResourceQuota": Kind("api/v1", "resourcequotas"),
    "Event": Kind("api/v1", "events"),
    "Lease": Kind("apis/coordination.k8s.io/v1", "leases"),
    "PodDisruptionBudget": Kind("apis/policy/v1", "poddisruptionbudgets"),
    "HTTPRoute": Kind("apis/gateway.networking.k8s.io/v1", "httproutes"),
    "VirtualService": Kind("apis/networking.istio.io/v1", "virtualservices"),
    "Flavor": Kind(f"apis/{names.GROUP}/{names.VERSION}", "flavors"),
    "Train": Kind(f"apis/{names.GROUP}/{names.VERSION}", "trains"),
}


def message_of(error: ApiException) -> str:
    """The API server's own message for a refused request (its Status), else the reason."""
    body = getattr(error, "body", None)
    try:
        status = json.loads(body) if body else {}
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    except ValueError:
        pass
    return str(error.reason or error.status)


def describe(error: BaseException) -> str:
    """Why a request to the API server failed, for a person."""
    if isinstance(error, ApiException):
        return f"the API server answered {error.status}: {message_of(error)}"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def retryable(error: BaseException) -> bool:
    """Worth trying again later by itself: the server was busy, broken or unreachable."""
    if isinstance(error, ApiException):
        return error.status in (409, 429) or error.status >= 500 or error.status == 0
    return True  # connection errors and timeouts


async def request(
    api: client.ApiClient,
    method: str,
    path: str,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    content_type: str | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
) -> dict[str, Any]:
    """One request; the decoded JSON answer. A non-2xx answer raises ApiException with the
    API server's Status as its body."""
    headers = {"Accept": "application/json"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    elif body is not None:
        headers["Content-Type"] = "application/json"
    response = await api.call_api(
        path,
        method,
        query_params=list((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _preload_content=False,
        _request_timeout=request_timeout,
    )
    try:
        text = await response.text()
    finally:
        response.release()
    API_REQUESTS.labels(method, str(response.status)).inc()
    if not 200 <= response.status <= 299:
        error = ApiException(status=response.status, reason=response.reason)
        error.body = text
        raise error
    return dict(json.loads(text)) if text else {}
