"""Idempotency keys follow one rule, whichever door an event comes through.

The same key and type with the same payload (the same JSON) returns the rows of the first use
and records nothing; with another payload it is refused: IdempotencyConflict from `emit()` and
`emit_batch()`, 409 from the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from eventing import emit
from eventing.models import EventLog
from eventing.recording import emit as recording
from eventing.recording.emit import EventRequest, IdempotencyConflict, emit_batch
from tests.factories import EventTypeFactory, TriggerFactory

pytestmark = pytest.mark.django_db

TYPE = "order_placed"
CONFLICT = "conflict"


def by_emit(payload: Any, key: str) -> list[str] | str:
    try:
        return [str(row.id) for row in emit(TYPE, payload, idempotency_key=key)]
    except IdempotencyConflict:
        return CONFLICT


def by_emit_batch(payload: Any, key: str) -> list[str] | str:
    request = EventRequest(TYPE, payload, timezone.now(), idempotency_key=key)
    try:
        [item] = emit_batch([request])
    except IdempotencyConflict:
        return CONFLICT
    return [str(row.id) for row in item.rows]


def answered(response, ids: Callable[[dict], list[str]]) -> list[str] | str:
    """The event ids of a 200/201/202, or CONFLICT for a 409."""
    if response.status_code == 409:
        return CONFLICT
    assert response.status_code in (200, 201, 202), response.content
    return ids(response.json())


def by_api_field(payload: Any, key: str) -> list[str] | str:
    body = {"type": TYPE, "payload": payload, "idempotency_key": key}
    response = APIClient().post("/api/eventing/events/", body, format="json")
    return answered(response, lambda data: [event["id"] for event in data["events"]])


def by_api_header(payload: Any, key: str) -> list[str] | str:
    body = {"type": TYPE, "payload": payload}
    response = APIClient().post(
        "/api/eventing/events/", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    return answered(response, lambda data: [event["id"] for event in data["events"]])


def by_api_batch(payload: Any, key: str) -> list[str] | str:
    body = [{"type": TYPE, "payload": payload, "idempotency_key": key}]
    response = APIClient().post("/api/eventing/events/", body, format="json")
    return answered(response, lambda data: [e["id"] for e in data["results"][0]["events"]])


def by_space_cloud_queue(payload: Any, key: str) -> list[str] | str:
    body = {"type": TYPE, "payload": payload}
    response = APIClient().post(
        "/v1/api/default/eventing/queue", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    return answered(response, lambda data: data["event_ids"])


ENTRY_POINTS = [
    by_emit,
    by_emit_batch,
    by_api_field,
    by_api_header,
    by_api_batch,
    by_space_cloud_queue,
]


@pytest.fixture
def two_triggers():
    EventTypeFactory(name=TYPE, queue_rule="allow")
    TriggerFactory(name="a_hook", type=TYPE)
    TriggerFactory(name="b_hook", type=TYPE)


@pytest.mark.parametrize("queue", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_a_reused_key_answers_by_one_rule(queue, two_triggers):
    first = queue({"n": 1, "items": [1, 2], "big": 1e300}, "order-1")
    assert len(first) == 2
    # The same JSON, spelt otherwise (key order, 1.0 for 1): the first rows, nothing new.
    assert queue({"big": 1e300, "items": [1.0, 2], "n": 1}, "order-1") == first
    # Another payload under the same key: refused, never answered with the first rows.
    assert queue({"n": 2, "items": [1, 2], "big": 1e300}, "order-1") == CONFLICT
    assert queue({"n": True, "items": [1, 2], "big": 1e300}, "order-1") == CONFLICT  # true != 1
    assert EventLog.objects.count() == 2
    # The key belongs to its type: another type records its own events.
    TriggerFactory(type="order_shipped")
    assert len(emit("order_shipped", {"n": 2}, idempotency_key="order-1")) == 1


@pytest.mark.parametrize("queue", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_a_concurrent_use_of_the_key_answers_by_the_same_rule(queue, two_triggers, monkeypatch):
    """A caller that looked the key up just before another committed it loses at INSERT (the
    unique constraint) and gets what it would have got had it looked a moment later."""
    first = queue({"n": 1}, "order-1")
    find = recording.find_idempotent_many
    calls = []

    def too_early_once(keys, db):
        calls.append(keys)
        return {} if len(calls) == 1 else find(keys, db)

    monkeypatch.setattr(recording, "find_idempotent_many", too_early_once)
    assert queue({"n": 1}, "order-1") == first
    calls.clear()
    assert queue({"n": 2}, "order-1") == CONFLICT
    assert EventLog.objects.count() == 2
