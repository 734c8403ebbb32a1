"""max_in_flight: a capped trigger's burst gets broker messages only for its free slots; the
other rows wait in the table (no message) until a slot frees, and none is lost."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from eventing import emit
from eventing.delivery.circuit import forget
from eventing.maintenance.sweeper import sweep
from eventing.models import CircuitState, EventLog, EventStatus, TriggerCircuit
from eventing.store.slots import IN_FLIGHT_REMARK
from tests.factories import TriggerFactory

# Each emit commits, so its message goes out as in production (on commit).
pytestmark = pytest.mark.django_db(transaction=True)

BURST = 40


def emit_burst(event_type: str, count: int) -> list:
    """`count` events, each in a transaction of its own (as a web request emits)."""
    ids = []
    for n in range(count):
        with transaction.atomic():
            ids += [e.id for e in emit(event_type, {"n": n})]
    return ids


def messaged(messages) -> list[str]:
    return [str(call.args[0][0]) for call in messages.call_args_list]


def test_a_capped_burst_gets_messages_for_its_free_slots_only(receiver, message_per_event):
    TriggerFactory(type="capped", max_in_flight=2, url=receiver.url("/ok/capped"))

    ids = emit_burst("capped", BURST)

    # Two messages, one per slot, not one per event.
    assert len(message_per_event.call_args_list) == 2
    held = EventLog.objects.filter(id__in=ids, enqueued_at__isnull=True)
    assert held.count() == BURST - 2
    assert set(held.values_list("status", "remark")) == {(EventStatus.STAGED, IN_FLIGHT_REMARK)}
    assert {str(pk) for pk in ids[:2]} == set(messaged(message_per_event))


def test_an_uncapped_trigger_gets_a_message_per_event(receiver, message_per_event):
    TriggerFactory(type="open", url=receiver.url("/ok/open"))

    emit_burst("open", 10)

    assert len(message_per_event.call_args_list) == 10


def test_the_sweeper_leaves_held_rows_while_the_slots_are_taken(receiver, message_per_event):
    TriggerFactory(type="capped", max_in_flight=2, url=receiver.url("/ok/capped"))
    ids = emit_burst("capped", 10)
    message_per_event.reset_mock()

    sweep()
    sweep()

    # The two sent rows' messages are still out: no slot is free, nothing is sent again.
    assert message_per_event.call_args_list == []
    assert EventLog.objects.filter(id__in=ids, enqueued_at__isnull=True).count() == 8


def test_a_slot_freed_by_a_lost_lease_is_filled_by_the_sweeper(receiver, message_per_event):
    TriggerFactory(type="capped", max_in_flight=2, url=receiver.url("/ok/capped"))
    ids = emit_burst("capped", 10)
    now = timezone.now()
    # Both sent rows were claimed by a worker that was then killed: their leases ran out.
    EventLog.objects.filter(id__in=ids[:2]).update(
        status=EventStatus.PROCESSING, attempts=1, locked_until=now - dt.timedelta(seconds=1)
    )
    message_per_event.reset_mock()

    sweep()

    # The two lost rows go again, into the two slots; the held rows still wait, none lost.
    assert set(messaged(message_per_event)) == {str(pk) for pk in ids[:2]}
    assert EventLog.objects.filter(id__in=ids, status=EventStatus.STAGED).count() == 10
    # Once those two are done, the next sweep sends the two oldest held rows.
    EventLog.objects.filter(id__in=ids[:2]).update(status=EventStatus.PROCESSED)
    message_per_event.reset_mock()

    sweep()

    assert set(messaged(message_per_event)) == {str(pk) for pk in ids[2:4]}


def test_held_rows_wait_while_the_circuit_is_open_and_one_goes_when_its_probe_is_due(
    receiver, message_per_event
):
    trigger = TriggerFactory(type="capped", max_in_flight=2, url=receiver.url("/ok/capped"))
    ids = emit_burst("capped", 10)
    # The two sent rows failed and opened the circuit: no slot is taken, the probe is later.
    EventLog.objects.filter(id__in=ids[:2]).update(status=EventStatus.FAILED)
    now = timezone.now()
    circuit = TriggerCircuit.objects.create(
        trigger=trigger,
        state=CircuitState.OPEN,
        consecutive_failures=10,
        next_probe_at=now + dt.timedelta(minutes=5),
        probe_interval_s=300,
    )
    message_per_event.reset_mock()

    sweep()

    assert message_per_event.call_args_list == []
    # The probe is due: held rows go into the free slots again (one of them is the probe).
    circuit.next_probe_at = timezone.now() - dt.timedelta(seconds=1)
    circuit.save()
    forget(trigger.pk)

    sweep()

    assert set(messaged(message_per_event)) == {str(pk) for pk in ids[2:4]}
