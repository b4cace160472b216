"""What a write of ours returns goes into the cache once, and never over a later version."""

from typing import Any

from adroit.kube.informer import Informer


def service(rv: str, port: int) -> dict[str, Any]:
    return {"metadata": {"name": "web", "resourceVersion": rv}, "spec": {"ports": [{"port": port}]}}


def test_a_remembered_write_is_delivered_once_and_never_goes_back() -> None:
    seen: list[tuple[Any, Any]] = []
    cache = Informer(None, "Service", "ns", on_change=lambda old, new: seen.append((old, new)))  # type: ignore[arg-type]

    cache.remember(service("5", 80))
    cache.remember(service("5", 80))  # the same write again, or the watch brought it first
    cache.remember(service("4", 79))  # an older answer that arrived late
    assert len(seen) == 1
    assert cache.items["web"]["spec"]["ports"] == [{"port": 80}]

    cache.remember(service("6", 81))
    assert len(seen) == 2
    assert cache.versions["web"] == "6"
