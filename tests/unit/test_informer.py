"""What a write of ours returns goes into the cache once, and never over a later version."""

import json
from typing import Any

from adroit.kube import informer
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


def train_line(rv: str, cars: int) -> bytes:
    """A watch event as the API server writes it, for a Train with `cars` cars in its status."""
    obj = {
        "apiVersion": "adroit.dev/v1alpha1",
        "kind": "Train",
        "metadata": {"name": "train-1", "namespace": "adroit", "resourceVersion": rv},
        "spec": {},
        "status": {
            "cars": [{"flavor": f"flavor-{i:04d}", "staging": "Verified"} for i in range(cars)]
        },
    }
    return json.dumps({"type": "MODIFIED", "object": obj}, separators=(",", ":")).encode() + b"\n"


def test_the_echo_of_a_large_write_already_remembered_is_not_decoded(monkeypatch: Any) -> None:
    decoded: list[int] = []
    loads = json.loads
    monkeypatch.setattr(informer.json, "loads", lambda s: decoded.append(len(s)) or loads(s))
    seen: list[Any] = []
    cache = Informer(None, "Train", "adroit", on_change=lambda old, new: seen.append(new))  # type: ignore[arg-type]

    cache._line(train_line("5", 2000))  # another writer's change: decoded and delivered
    assert len(decoded) == 1
    assert len(seen) == 1
    cache.remember(json.loads(train_line("6", 2000))["object"])  # our write's answer
    decoded.clear()

    cache._line(train_line("6", 2000))  # its echo on the watch: the cache holds it
    assert decoded == []
    assert len(seen) == 2
    assert cache.resource_version == "6"  # the watch resumes after it

    cache._line(train_line("7", 2000))  # a later change is read whole
    assert len(decoded) == 1
    assert cache.versions["train-1"] == "7"
    assert len(seen[-1]["status"]["cars"]) == 2000


def test_a_small_event_and_one_of_another_shape_are_read_whole(monkeypatch: Any) -> None:
    decoded: list[int] = []
    loads = json.loads
    monkeypatch.setattr(informer.json, "loads", lambda s: decoded.append(len(s)) or loads(s))
    cache = Informer(None, "Train", "adroit")  # type: ignore[arg-type]
    cache.remember(service("6", 80))
    cache._line(json.dumps({"type": "MODIFIED", "object": service("6", 80)}).encode())
    assert len(decoded) == 1  # below PEEK_BYTES: decoded as always
    # Its metadata after its spec: not where the head looks, so decoded whole, and new.
    event = loads(train_line("8", 2000))
    event["object"] = {"spec": {}, **event["object"]}
    cache._line(json.dumps(event, separators=(",", ":")).encode())
    assert len(decoded) == 2
    assert cache.versions["train-1"] == "8"
