"""The traffic route of a flavor in production: Gateway API HTTPRoute or Istio VirtualService.

The primary serves 100 - trafficPercent; the shadow serves trafficPercent and
gets a copy of mirrorPercent of the requests (never both, the CRD ensures).
"""

from dataclasses import dataclass
from typing import Any

from adroit.api.settings import Traffic
from adroit.plan.stages import Role, Stage, object_labels

Manifest = dict[str, Any]
SERVICE_PORT = 80


@dataclass(frozen=True)
class RouteKind:
    """A kind of traffic route the operator writes, as the API server serves it."""

    group: str
    version: str
    plural: str
    kind: str
    router: str  # the settings' traffic.router that writes it

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


HTTPROUTE = RouteKind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", "gateway")
VIRTUALSERVICE = RouteKind(
    "networking.istio.io", "v1", "virtualservices", "VirtualService", "istio"
)
# Every route kind, for the code that reads, writes and deletes them.
ROUTE_KINDS = (HTTPROUTE, VIRTUALSERVICE)
ROUTE_KIND_NAMES = frozenset(k.kind for k in ROUTE_KINDS)


@dataclass(frozen=True)
class Split:
    """Shares of live requests: served by each, and copied to the shadow."""

    primary: int
    shadow: int = 0
    mirror: int = 0

    def __post_init__(self) -> None:
        if self.primary + self.shadow != 100:
            raise ValueError(f"weights must sum to 100, not {self.primary} + {self.shadow}")
        if self.mirror and self.shadow:
            raise ValueError("a shadow is mirrored or serves live traffic, never both")


def split_of(traffic_percent: int, mirror_percent: int) -> Split:
    return Split(primary=100 - traffic_percent, shadow=traffic_percent, mirror=mirror_percent)


def _labels(flavor: str) -> dict[str, str]:
    return object_labels(flavor, Stage.PRODUCTION, Role.PRIMARY)


def http_route(
    flavor: str, namespace: str, primary: str, shadow: str | None, split: Split, traffic: Traffic
) -> Manifest:
    if traffic.gateway is not None:
        parent: dict[str, Any] = {"name": traffic.gateway.name}
        if traffic.gateway.namespace:
            parent["namespace"] = traffic.gateway.namespace
        # Through a shared Gateway, each flavor answers under its own path.
        matches = [{"path": {"type": "PathPrefix", "value": f"/{flavor}"}}]
    else:
        # Mesh routing (GAMMA): the route attaches to the flavor's stable Service.
        parent = {"group": "", "kind": "Service", "name": flavor, "port": SERVICE_PORT}
        matches = [{"path": {"type": "PathPrefix", "value": "/"}}]
    backends = [{"name": primary, "port": SERVICE_PORT, "weight": split.primary}]
    if shadow is not None:
        backends.append({"name": shadow, "port": SERVICE_PORT, "weight": split.shadow})
    rule: dict[str, Any] = {"matches": matches, "backendRefs": backends}
    if shadow is not None and split.mirror:
        rule["filters"] = [
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {"name": shadow, "port": SERVICE_PORT},
                    "percent": split.mirror,
                },
            }
        ]
    return {
        "apiVersion": HTTPROUTE.api_version,
        "kind": HTTPROUTE.kind,
        "metadata": {"name": flavor, "namespace": namespace, "labels": _labels(flavor)},
        "spec": {"parentRefs": [parent], "rules": [rule]},
    }


def virtual_service(
    flavor: str, namespace: str, primary: str, shadow: str | None, split: Split, traffic: Traffic
) -> Manifest:
    def destination(service: str) -> dict[str, Any]:
        return {
            "host": f"{service}.{namespace}.svc.cluster.local",
            "port": {"number": SERVICE_PORT},
        }

    route = [{"destination": destination(primary), "weight": split.primary}]
    if shadow is not None:
        route.append({"destination": destination(shadow), "weight": split.shadow})
    http: dict[str, Any] = {"route": route}
    if shadow is not None and split.mirror:
        http["mirror"] = destination(shadow)
        http["mirrorPercentage"] = {"value": float(split.mirror)}
    spec: dict[str, Any] = {"hosts": [f"{flavor}.{namespace}.svc.cluster.local"], "http": [http]}
    if traffic.gateway is not None:
        gateway = traffic.gateway
        spec["gateways"] = [
            "mesh",
            f"{gateway.namespace}/{gateway.name}" if gateway.namespace else gateway.name,
        ]
    return {
        "apiVersion": VIRTUALSERVICE.api_version,
        "kind": VIRTUALSERVICE.kind,
        "metadata": {"name": flavor, "namespace": namespace, "labels": _labels(flavor)},
        "spec": spec,
    }


def render_route(
    flavor: str, namespace: str, primary: str, shadow: str | None, split: Split, traffic: Traffic
) -> Manifest | None:
    if traffic.router == "gateway":
        return http_route(flavor, namespace, primary, shadow, split, traffic)
    if traffic.router == "istio":
        return virtual_service(flavor, namespace, primary, shadow, split, traffic)
    return None


def applied_split(route: Manifest, primary: str, shadow: str | None) -> Split | None:
    """The split a route actually carries (for status), by Service name."""
    kind = route.get("kind")
    weights: dict[str, int] = {}
    mirror = 0
    if kind == HTTPROUTE.kind:
        rule = (route["spec"].get("rules") or [{}])[0]
        weights = {b["name"]: int(b.get("weight", 1)) for b in rule.get("backendRefs") or []}
        for f in rule.get("filters") or []:
            if f.get("type") == "RequestMirror":
                mirror = int(f["requestMirror"].get("percent", 100))
    elif kind == VIRTUALSERVICE.kind:
        http = (route["spec"].get("http") or [{}])[0]
        weights = {
            d["destination"]["host"].split(".")[0]: int(d.get("weight", 100))
            for d in http.get("route") or []
        }
        if "mirror" in http:
            mirror = int((http.get("mirrorPercentage") or {}).get("value", 100))
    total = sum(weights.values()) or 1
    served = round(100 * weights.get(shadow, 0) / total) if shadow else 0
    try:
        return Split(primary=100 - served, shadow=served, mirror=mirror if shadow else 0)
    except ValueError:
        return None


def shadow_refusal(shadow: dict[str, Any] | None, traffic: Traffic) -> str | None:
    """Why a Flavor's shadow breaks a runbook rule that depends on the settings; None if not."""
    if not shadow:
        return None
    if traffic.router == "none":
        return (
            "shadows need a traffic router, and this operator's settings say "
            "traffic.router: none: remove spec.shadow, or have the platform team set the "
            "router to gateway or istio"
        )
    mirror = int(shadow.get("mirrorPercent") or 0)
    cap = traffic.mirror_cap_percent
    if mirror > cap:
        return (
            f"spec.shadow.mirrorPercent {mirror} is over the mirror cap of {cap} "
            f"(settings traffic.mirrorCapPercent): mirror at most {cap} percent of requests"
        )
    return None
