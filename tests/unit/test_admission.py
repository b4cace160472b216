"""The admission answer: only the annotations a handler set, as JSON-patch operations."""

import asyncio
import base64
import json
from typing import Any

import kopf

from adroit.kube.admission import annotation_ops, reviewer


def test_annotations_are_added_replaced_and_removed_by_pointer() -> None:
    body = {"metadata": {"annotations": {"adroit.dev/a": "1", "adroit.dev/gone": "x"}}}
    patch = {
        "metadata": {
            "annotations": {"adroit.dev/a": "2", "adroit.dev/gone": None, "adroit.dev/same": None}
        }
    }
    assert annotation_ops(body, patch) == [
        {"op": "add", "path": "/metadata/annotations/adroit.dev~1a", "value": "2"},
        {"op": "remove", "path": "/metadata/annotations/adroit.dev~1gone"},
    ]


def test_an_object_without_annotations_gets_the_map() -> None:
    patch = {"metadata": {"annotations": {"adroit.dev/by": "bob", "adroit.dev/x": None}}}
    assert annotation_ops({"metadata": {}}, patch) == [
        {"op": "add", "path": "/metadata/annotations", "value": {"adroit.dev/by": "bob"}}
    ]


def test_a_refusal_and_a_patch_in_admission_review_form() -> None:
    async def stamp(body: Any, patch: kopf.Patch, userinfo: Any, **_: Any) -> None:
        if userinfo["username"] == "mallory":
            raise kopf.AdmissionError("no", code=403)
        patch.setdefault("metadata", {}).setdefault("annotations", {})["by"] = "bob"

    review = reviewer({"trains": stamp}, kopf.Memo())

    def ask(user: str) -> dict[str, Any]:
        data = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {"uid": "u1", "object": {"metadata": {}}, "userInfo": {"username": user}},
        }
        return dict(asyncio.run(review(data, webhook="trains"))["response"])

    refused = ask("mallory")
    assert refused == {"uid": "u1", "allowed": False, "status": {"code": 403, "message": "no"}}
    allowed = ask("bob")
    assert allowed["allowed"] is True
    ops = json.loads(base64.b64decode(allowed["patch"]))
    assert ops == [{"op": "add", "path": "/metadata/annotations", "value": {"by": "bob"}}]
