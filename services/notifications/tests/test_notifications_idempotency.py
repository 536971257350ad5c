"""Idempotency-Key on POST /notifications/{id}/ack (CONTRACT 6.4): a retried
acknowledgement returns the first response (`acknowledged_now: true`), not a
second outcome, and emits one AlertAcknowledged."""

from __future__ import annotations

from kap_shared.testing import token

from .conftest import Harness
from .test_notifications_http import _alert_notification


def test_a_retried_ack_returns_the_first_response_and_emits_once(h: Harness) -> None:
    row = _alert_notification(h)
    caller = {**token("rx-ada", "prescriber", ["site-a"]), "Idempotency-Key": "ack-1"}
    path = f"/notifications/{row['notification_id']}/ack"

    first = h.client.post(path, headers=caller)
    again = h.client.post(path, headers=caller)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.json()["acknowledged_now"] is True  # the first answer, replayed
    assert again.headers["idempotent-replayed"] == "true"
    assert len(h.outbox("AlertAcknowledged")) == 1
    other = h.client.post(
        f"/notifications/{row['notification_id']}x/ack",
        headers=caller,
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
