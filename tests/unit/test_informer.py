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


def event(kind: str, rv: str) -> dict[str, Any]:
    return {"type": kind, "object": service(rv, 80)}


def test_a_late_answer_does_not_bring_back_what_was_deleted_since() -> None:
    cache = Informer(None, "Service", "ns")  # type: ignore[arg-type]
    cache.remember(service("5", 80))
    cache._event(event("DELETED", "7"))
    cache.remember(service("6", 80))  # the answer to a write from before the deletion
    assert "web" not in cache.items
    cache._event(event("ADDED", "8"))  # created again
    assert cache.versions["web"] == "8"


def test_a_deletion_older_than_what_the_cache_holds_is_passed_over() -> None:
    cache = Informer(None, "Service", "ns")  # type: ignore[arg-type]
    cache._event(event("ADDED", "5"))
    cache.remember(service("9", 80))  # deleted and created again by us: the answer came first
    cache._event(event("DELETED", "7"))
    assert cache.versions["web"] == "9"
