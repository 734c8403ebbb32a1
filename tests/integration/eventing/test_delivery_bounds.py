"""Bounds that an outsider's events meet in delivery: the circuit, per-key order, the rate
limit. Each test is one attack that held on the code before these bounds."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from eventing import emit
from eventing.delivery.deliver import deliver_event, deliver_events
from eventing.models import EventLog, EventStatus, TriggerCircuit
from eventing.store.ordering import WAITING_BEHIND
from eventing.store.predicates import not_blocked
from tests.factories import TriggerFactory
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db


def circuit_failures(trigger) -> int:
    row = TriggerCircuit.objects.filter(trigger=trigger).first()
    return row.consecutive_failures if row else 0


def test_refused_payloads_and_failed_transforms_never_trip_the_circuit(receiver):
    """Attack: an anonymous caller of an `allow` type queues ten events the receiver refuses
    (400), or that fail the trigger's request transform; the circuit opened and held every
    legitimate event, and one more every 5 s kept it open. The circuit judges the endpoint:
    neither counts, while 5xx, 429 and connection errors do."""
    refusing = TriggerFactory(
        type="hostile", url=receiver.url("/status/400"), retries=0, circuit_failures=3
    )
    for _ in range(5):
        [event] = emit("hostile", {"n": 1})
        assert deliver_event(str(event.id)).outcome.status == EventStatus.FAILED
    transforming = TriggerFactory(
        type="shaped",
        url=receiver.url("/ok/shaped"),
        retries=0,
        circuit_failures=3,
        transform_body="{{ data.missing.deeper }}",
    )
    for _ in range(5):
        [event] = emit("shaped", {"n": 1})
        result = deliver_event(str(event.id))
        assert result.outcome.status == EventStatus.FAILED
        assert "transform" in result.outcome.remark.lower()

    assert circuit_failures(refusing) == 0
    assert circuit_failures(transforming) == 0
    for path, code in (("/status/503", 503), ("/status/429", 429)):
        failing = TriggerFactory(
            type=f"down_{code}", url=receiver.url(path), retries=0, circuit_failures=3
        )
        [event] = emit(f"down_{code}", {"n": 1})
        deliver_event(str(event.id))
        assert circuit_failures(failing) == 1
    unreachable = TriggerFactory(
        type="unreachable", url="http://127.0.0.1:9/closed", retries=0, circuit_failures=3
    )
    [event] = emit("unreachable", {"n": 1})
    deliver_event(str(event.id))
    assert circuit_failures(unreachable) == 1


def test_an_event_not_yet_due_never_holds_one_that_is_due(receiver, message_per_event):
    """Attack: one anonymous event of an ordering key scheduled a year ahead; every later
    event of that key sat `staged` with an empty remark until then. Order per key follows due
    time: the due ones go first, and a row that is held names what holds it."""
    TriggerFactory(type="order_changed", ordering_key="order.id", url=receiver.url("/ok/o"))
    [far] = emit("order_changed", {"order": {"id": 7}, "n": 0}, delay_s=365 * 86400)
    with transaction.atomic():
        first, second = (emit("order_changed", {"order": {"id": 7}, "n": n})[0] for n in (1, 2))

    # The first of the due ones is first of its key: the far one does not hold it.
    assert EventLog.objects.filter(not_blocked(), id=first.id).exists()
    held = deliver_event(str(second.id))
    assert held.skipped.startswith("waiting behind")
    second.refresh_from_db()
    assert second.remark.startswith(f"{WAITING_BEHIND} {first.id}")
    assert deliver_event(str(first.id)).outcome.status == EventStatus.PROCESSED
    assert deliver_event(str(second.id)).outcome.status == EventStatus.PROCESSED
    assert [r.json()["data"]["n"] for r in receiver.on("/ok/o")] == [1, 2]
    far.refresh_from_db()
    assert far.status == EventStatus.STAGED


def test_no_rolling_second_sees_more_than_the_rate_limit(receiver, publish_inline):
    """Attack: a burst of 100 events to a trigger limited to 20/s; the receiver saw 40 in its
    first second and up to 48 in a rolling one (a full bucket of a second's worth, plus half a
    second taken ahead, plus the next second's refill). Smooth by default: at most the limit
    (+ 10 %) in any rolling second."""
    TriggerFactory(type="limited", rate_limit=20, url=receiver.url("/ok/limited"))
    with transaction.atomic():
        events = [emit("limited", {"n": n})[0] for n in range(60)]
    ids = [str(e.id) for e in events]

    def deliver_due() -> bool:
        deliver_events(ids, events[0].trigger_id)
        return EventLog.objects.filter(status="processed").count() == len(ids)

    wait_until(deliver_due, timeout_s=30, message="every event delivered")
    arrivals = sorted(r.at for r in receiver.on("/ok/limited"))
    assert len(arrivals) == 60
    busiest = max(sum(1 for t in arrivals if start <= t < start + 1.0) for start in arrivals)
    assert busiest <= 22, f"{busiest} calls in one rolling second (limit 20)"
    assert arrivals[-1] - arrivals[0] >= dt.timedelta(seconds=2).total_seconds()
