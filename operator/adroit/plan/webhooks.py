"""The admission webhook configurations: which writes the API server sends to the operator.

Installed by whoever installs Adroit (deploy/webhooks.yaml is rendered from here,
`make run` and the tests render one for their settings), never by the operator:
it only fills in the CA bundle of its own configuration (`ca_bundle_patch`).

Scoped to the control namespace. Only the writes that matter are sent, by CEL
matchConditions, so that with the operator down nothing else about a Train is
blocked: an approval then fails (failurePolicy Fail) with the API server's
message that the webhook cannot be reached. Flavor writes never wait for the
operator (failurePolicy Ignore): GitOps keeps working during an outage.
"""

import base64
import ipaddress
from typing import Any

from adroit.api import names
from adroit.api.settings import Settings

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
    base_url: str | None, service: dict[str, Any] | None, path: str, ca: bytes | None
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if ca is not None:
        config["caBundle"] = base64.b64encode(ca).decode()
    if service is not None:
        config["service"] = {**service, "path": f"/{path}"}
    else:
        config["url"] = f"{base_url}/{path}"
    return config


def configuration_name(namespace: str) -> str:
    return f"adroit-{namespace}"


def webhook_configuration(
    namespace: str,
    ca: bytes | None = None,
    *,
    base_url: str | None = None,
    service: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The MutatingWebhookConfiguration `adroit-NAMESPACE` for one control namespace.

    Without `ca` it has no caBundle: the operator fills that in when it starts.
    """
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
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
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
            "name": configuration_name(namespace),
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


def base_url(host: str, port: int) -> str:
    """How the API server reaches a webhook served on host:port (kopf's URL)."""
    if ":" in host:  # an IPv6 address
        host = f"[{ipaddress.IPv6Address(host)}]"
    return f"https://{host}" if port == 443 else f"https://{host}:{port}"


def configuration_for(settings: Settings, ca: bytes | None = None) -> dict[str, Any]:
    """The configuration for these settings: the Service when there is one, else a URL."""
    admission = settings.admission
    service = admission.service
    return webhook_configuration(
        settings.namespaces.control,
        ca,
        base_url=None if service else base_url(admission.host or admission.listen, admission.port),
        service=service.model_dump() if service else None,
    )


def _without_ca(hook: dict[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in hook.get("clientConfig", {}).items() if k != "caBundle"}
    return {**hook, "clientConfig": config}


def differences(installed: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What an installed configuration lacks of the wanted one, caBundle aside.

    The API server adds defaults (matchPolicy, objectSelector, ...); only fields
    the wanted configuration sets are compared.
    """
    have = {h.get("name"): _without_ca(h) for h in installed.get("webhooks") or []}
    found: list[str] = []
    for want in wanted["webhooks"]:
        hook = have.get(want["name"])
        if hook is None:
            found.append(f"webhook {want['name']} is missing")
            continue
        for key, value in _without_ca(want).items():
            if hook.get(key) != value:
                found.append(f"webhook {want['name']}: {key} is {hook.get(key)!r}, not {value!r}")
    return found


def ca_bundle_patch(installed: dict[str, Any], ca: bytes) -> list[dict[str, Any]]:
    """A JSON patch that sets every webhook's caBundle to `ca`; empty when all already have it.

    Each change is guarded by a `test` of the webhook's name at that index, so a
    configuration reordered meanwhile is refused rather than patched in the wrong place.
    """
    bundle = base64.b64encode(ca).decode()
    patch: list[dict[str, Any]] = []
    for index, hook in enumerate(installed.get("webhooks") or []):
        if (hook.get("clientConfig") or {}).get("caBundle") == bundle:
            continue
        patch.append({"op": "test", "path": f"/webhooks/{index}/name", "value": hook["name"]})
        patch.append(
            {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": bundle}
        )
    return patch
