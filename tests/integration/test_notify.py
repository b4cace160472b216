"""The engineer's notifications: a webhook that is down is tried again, a message it
never takes is an Event on the train, and Events the API server refuses stop nothing."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from adroit.kube import notify
from adroit.kube.metrics import REGISTRY
from tests.integration.operator import Operator, Webhook, own_operator
from tests.kube import apply, eventually, refusing


@pytest.fixture
def op(tmp_path: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Iterator[Operator]:
    monkeypatch.setattr(notify, "FIRST_DELAY", 0.2)  # the backoff's shape, quicker
    with own_operator(tmp_path, webhook=webhook) as running:
        running.start()
        yield running


def asked_to_approve(op: Operator, webhook: Webhook, after: str) -> str:
    """A change by bob forms a train; it waits for approval, and the engineer is asked."""
    apply(op.flavor("ads", version="v1"), user="bob")
    train = op.new_train()
    op.wait_phase(train, "AwaitingApproval")
    eventually(
        lambda: any(train in t and "approve" in t for t in webhook.texts),
        what=f"the approval request to reach the engineer {after}",
    )
    return train


def test_a_notification_is_tried_again_until_the_webhook_takes_it(
    op: Operator, webhook: Webhook
) -> None:
    webhook.failing = 2
    train = asked_to_approve(op, webhook, after="two refusals")
    assert webhook.attempts >= 3
    assert "NotificationFailed" not in op.events(train, "reason")


def test_a_notification_never_taken_is_an_event(op: Operator, webhook: Webhook) -> None:
    webhook.failing = 1000
    apply(op.flavor("ads", version="v1"), user="bob")
    train = op.new_train()
    op.wait_phase(train, "AwaitingApproval")
    eventually(
        lambda: "NotificationFailed" in op.events(train, "reason"),
        what="an Event saying the engineer was not told",
    )
    events = op.events(train)
    assert "503" in events
    assert f"{notify.ATTEMPTS} attempt(s)" in events
    assert "approve" in events, "the Event carries what the message said"
    webhook.failing = 0


def test_events_the_api_server_refuses_stop_neither_the_train_nor_the_engineers_messages(
    op: Operator, webhook: Webhook
) -> None:
    message = "events are refused here"
    rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE"],
        "resources": ["events"],
    }
    probe = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "probe", "namespace": op.ns},
        "involvedObject": {"kind": "Train", "name": "probe", "namespace": op.ns},
        "reason": "Probe",
        "message": "probe",
    }

    def held_back() -> float:  # passes over the trains that failed and wait to be retried
        return sum(
            REGISTRY.get_sample_value(
                "controller_runtime_reconcile_total", {"controller": "train", "result": result}
            )
            or 0
            for result in ("requeue", "error")
        )

    with refusing(f"refuse-events-{op.ns}", rule, "false", message, op.ns, probe):
        before = held_back()
        train = asked_to_approve(op, webhook, after="though its Event was refused")
        op.approve(train, user="alice")
        op.wait_phase(train, "Deployed")
        eventually(
            lambda: any(train in t and "Deployed" in t for t in webhook.texts),
            what="the engineer to be told the train is deployed",
        )
        assert op.events(train) == "", "every Event of the train was refused"
        assert held_back() == before, "a refused Event is no failed pass to be retried"
