"""The admission webhook is served from its own thread: a busy reconciler never delays it.

The webhook's failure policy is Fail: a review that waited for the operator's event
loop (a rollout of 2,000 flavors keeps it busy) would make `kubectl apply` slow, then
refused at the webhook's timeout.
"""

import asyncio
import base64
import json
import ssl
import threading
import urllib.request
from typing import Any

import kopf

from adroit.api.settings import parse_settings
from adroit.kube.admission import reviewer
from adroit.kube.secrets import OperatorSecrets, self_signed
from adroit.kube.webhooks import WebhookServer, WebhookThread
from tests.integration.operator import free_port

REVIEW = {
    "apiVersion": "admission.k8s.io/v1",
    "kind": "AdmissionReview",
    "request": {
        "uid": "review-1",
        "operation": "UPDATE",
        "userInfo": {"username": "alice"},
        "object": {"metadata": {"name": "fraud", "annotations": {}}},
    },
}


def _post(port: int, ca: bytes) -> dict[str, Any]:
    context = ssl.create_default_context(cadata=ca.decode())
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/flavors",
        data=json.dumps(REVIEW).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def listening() -> tuple[int, Any, bytes, OperatorSecrets]:
    """A free port, settings that serve the webhook on it, and a certificate for it."""
    port = free_port()
    settings = parse_settings(
        "runtimes: {scikit-learn-2022-10: repo/sklearn:1}\n"
        f"admission: {{listen: 127.0.0.1, port: {port}}}\n"
    )
    cert, key = self_signed(("127.0.0.1",))
    return port, settings, cert, OperatorSecrets(b"k" * 32, cert, key, ("127.0.0.1",))


def test_a_review_is_answered_while_the_operators_loop_is_busy() -> None:
    port, settings, cert, secrets = listening()

    async def stamp(patch: Any, userinfo: Any, **_: Any) -> None:
        patch.setdefault("metadata", {}).setdefault("annotations", {})["adroit.dev/by"] = userinfo[
            "username"
        ]

    answers: list[dict[str, Any]] = []
    answered = threading.Event()

    def client() -> None:
        answers.append(_post(port, cert))
        answered.set()

    async def operator() -> bool:
        review = reviewer({"flavors": stamp}, kopf.Memo(settings=settings))
        thread = WebhookThread(WebhookServer(settings, secrets, review), review)
        thread.start()
        try:
            await asyncio.wrap_future(thread.ready)
            threading.Thread(target=client, daemon=True).start()
            # The operator's loop is busy (blocked, here) until the review has its answer:
            # a webhook served by this loop would never answer.
            return answered.wait(timeout=30)
        finally:
            thread.stop()
            await asyncio.wrap_future(thread.ended)

    assert asyncio.run(operator()), "the webhook did not answer while the loop was busy"
    response = answers[0]["response"]
    assert response["uid"] == "review-1"
    assert response["allowed"] is True
    assert json.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/metadata/annotations/adroit.dev~1by", "value": "alice"}
    ]


def test_the_tls_context_and_the_ca_bundle_are_done_on_the_webhooks_thread(
    monkeypatch: Any,
) -> None:
    """Loading the certificates, and the system's CA certificates for a client of a server
    without one, takes tens of ms: the operator's loop, starting the webhook, must not wait
    for it."""
    port, settings, cert, secrets = listening()
    made_on: list[str] = []
    build = WebhookServer._build_ssl

    async def then(api: Any) -> None:  # the operator's: the CA bundle put in place
        made_on.append(f"then: {threading.current_thread().name}")

    def recorded(self: WebhookServer) -> Any:
        made_on.append(threading.current_thread().name)
        return build(self)

    monkeypatch.setattr(WebhookServer, "_build_ssl", recorded)

    async def operator() -> dict[str, Any]:
        review = reviewer({}, kopf.Memo(settings=settings))
        thread = WebhookThread(WebhookServer(settings, secrets, review), review, then)
        thread.start()
        try:
            await asyncio.wrap_future(thread.ready)
            assert made_on[-1] == "then: adroit-webhook"  # done before it said it was ready
            return await asyncio.to_thread(_post, port, cert)  # served with that context
        finally:
            thread.stop()
            await asyncio.wrap_future(thread.ended)

    answer = asyncio.run(operator())
    assert answer["response"]["uid"] == "review-1"
    assert made_on == ["adroit-webhook", "then: adroit-webhook"]
