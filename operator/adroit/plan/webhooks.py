"""The admission webhook configurations: which writes the API server sends to the operator.

Scoped to the control namespace. Only the writes that matter are sent, by CEL
matchConditions, so that with the operator down nothing else about a Train is
blocked: an approval then fails (failurePolicy Fail) with the API server's
message that the webhook cannot be reached. Flavor writes never wait for the
operator (failurePolicy Ignore): GitOps keeps working during an outage.
"""

import base64
from typing import Any

from adroit.api import names

TRAINS_PATH = "trains"
FLAVORS_PATH = "flavors"


def _annotation(obj: str, key: str) -> str:
    return (
        f"(has({obj}.metadata.annotations) && '{key}' in {obj}.metadata.annotations ? "
        f"{obj}.metadata.annotations['{key}'] : '')"
    )


def _any_changed(keys: list[str]) -> str:
    return " || ".join(f"{_annotation('object', k)} != {_annotation('oldObject', k)}" for k in keys)


def _client(
    base_url: str | None, service: dict[str, Any] | None, path: str, ca: bytes
) -> dict[str, Any]:
    config: dict[str, Any] = {"caBundle": base64.b64encode(ca).decode()}
    if service is not None:
        config["service"] = {**service, "path": f"/{path}"}
    else:
        config["url"] = f"{base_url}/{path}"
    return config


def webhook_configuration(
    namespace: str, ca: bytes, *, base_url: str | None = None, service: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The MutatingWebhookConfiguration `adroit-NAMESPACE` for one control namespace."""
    scope = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    guarded = [*names.RECORDS, *names.RECORDS.values(), names.CREATED_BY]

    def hook(kind: str, path: str, failure: str, condition: str) -> dict[str, Any]:
        return {
            "name": f"{kind}.{namespace}.adroit.dev",
            "clientConfig": _client(base_url, service, path, ca),
            "rules": [
                {
                    "apiGroups": [names.GROUP],
                    "apiVersions": [names.VERSION],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": [kind],
                    "scope": "Namespaced",
                }
            ],
            "namespaceSelector": scope,
            "matchConditions": [{"name": "what-the-operator-checks", "expression": condition}],
            "failurePolicy": failure,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 10,
            "reinvocationPolicy": "IfNeeded",
        }

    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": f"adroit-{namespace}",
            "labels": {names.MANAGED_BY: names.MANAGED_BY_VALUE},
        },
        "webhooks": [
            hook(
                "trains",
                TRAINS_PATH,
                "Fail",
                f"request.operation == 'CREATE' || {_any_changed(guarded)}",
            ),
            hook(
                "flavors",
                FLAVORS_PATH,
                "Ignore",
                "request.operation == 'CREATE' || object.spec != oldObject.spec || "
                + _any_changed([names.CHANGED_BY, names.AUTHORS, names.AUTHOR]),
            ),
        ],
    }
