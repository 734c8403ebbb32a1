"""max_in_flight: a finished request releases the oldest held row at once; held rows otherwise
look again late, so a backlog does not re-queue itself every THROTTLE_RECHECK_S."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from eventing import emit
from eventing.delivery.deliver import deliver_events
from eventing.delivery.throttle import HELD_RECHECK_S
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


def test_finished_requests_release_as_many_held_rows_at_once(receiver, message_per_event):
    TriggerFactory(type="capped", max_in_flight=2, url=receiver.url("/ok/capped"))
    with transaction.atomic():
        events = [emit("capped", {"n": n})[0] for n in range(6)]
    message_per_event.reset_mock()
    started = timezone.now()

    results = deliver_events([str(e.id) for e in events], events[0].trigger_id)

    sent = [r for r in results.values() if r.outcome is not None]
    assert len(sent) == 2
    held = EventLog.objects.filter(status=EventStatus.STAGED).order_by("created_at")
    assert held.count() == 4
    # The two oldest held rows were released when the two requests finished: due now, each
    # with a message; the other two look again only late (the safety net).
    released = [row for row in held if row.deliver_at <= timezone.now()]
    assert [row.id for row in released] == [row.id for row in held[:2]]
    late = [row for row in held if row.deliver_at > timezone.now()]
    assert all(
        row.deliver_at >= started + dt.timedelta(seconds=HELD_RECHECK_S * 0.5) for row in late
    )
    messaged = {str(call.args[0][0]) for call in message_per_event.call_args_list}
    assert {str(row.id) for row in released} <= messaged
