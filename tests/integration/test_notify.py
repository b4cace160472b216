"""The engineer's notifications: a webhook that is down is tried again, and a message it
never takes is an Event on the train."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from adroit.kube import notify
from tests.integration.operator import Operator, Webhook, own_operator
from tests.kube import apply, eventually


@pytest.fixture
def op(tmp_path: Path, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> Iterator[Operator]:
    monkeypatch.setattr(notify, "FIRST_DELAY", 0.2)  # the backoff's shape, quicker
    with own_operator(tmp_path, webhook=webhook) as running:
        running.start()
        yield running


def test_a_notification_is_tried_again_until_the_webhook_takes_it(
    op: Operator, webhook: Webhook
) -> None:
    webhook.failing = 2
    apply(op.flavor("ads", version="v1"), user="bob")
    train = op.new_train()
    op.wait_phase(train, "AwaitingApproval")
    eventually(
        lambda: any(train in t and "approve" in t for t in webhook.texts),
        what="the approval request to reach the engineer after two refusals",
    )
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
