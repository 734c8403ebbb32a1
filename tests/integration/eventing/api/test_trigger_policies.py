"""Retry policy and circuit breaker fields of triggers over the API."""

from __future__ import annotations

import pytest
from django.utils import timezone

from eventing.models import CircuitState, TriggerCircuit
from tests.factories import TriggerFactory
from tests.support.api_fixtures import TRIGGERS_URL

pytestmark = pytest.mark.django_db


def test_retry_policy_fields_are_validated_and_saved(staff):
    trigger = TriggerFactory()
    url = f"{TRIGGERS_URL}{trigger.name}/"
    empty = staff.patch(url, {"retry_policy": "listed"}, format="json")
    assert empty.status_code == 400
    assert "retry_statuses" in str(empty.json())
    bad = staff.patch(url, {"retry_statuses": [99, "500"]}, format="json")
    assert bad.status_code == 400
    assert "retry_statuses" in str(bad.json())

    ok = staff.patch(
        url,
        {"retry_policy": "listed", "retry_statuses": [409, 503], "circuit_failures": 5},
        format="json",
    )
    assert ok.status_code == 200, ok.content
    trigger.refresh_from_db()
    assert (trigger.retry_policy, trigger.retry_statuses) == ("listed", [409, 503])
    assert trigger.circuit_failures == 5


def test_a_trigger_shows_its_circuit(staff):
    trigger = TriggerFactory(circuit_failures=3)
    url = f"{TRIGGERS_URL}{trigger.name}/"
    assert staff.get(url).json()["circuit"] is None
    now = timezone.now()
    TriggerCircuit.objects.create(
        trigger=trigger,
        state=CircuitState.OPEN,
        consecutive_failures=3,
        failing_since=now,
        opened_at=now,
        next_probe_at=now,
        last_error="HTTP 503",
    )
    circuit = staff.get(url).json()["circuit"]
    assert circuit["state"] == "open"
    assert circuit["consecutive_failures"] == 3
    assert circuit["last_error"] == "HTTP 503"
    listed = staff.get(TRIGGERS_URL).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["circuit"]["state"] for row in rows if row["name"] == trigger.name] == ["open"]


def test_new_triggers_get_the_default_policy_and_circuit(staff):
    answer = staff.post(
        TRIGGERS_URL,
        {"name": "fresh", "type": "order_placed", "url": "http://127.0.0.1:9/ok"},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["retry_policy"], body["retry_statuses"], body["circuit_failures"]) == (
        "transient",
        [],
        10,
    )
