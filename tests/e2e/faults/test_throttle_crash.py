"""A worker killed while it holds a capped trigger's slots: the slots come back when the
leases run out, and every row held back for a slot is still delivered."""

from __future__ import annotations

from django.db import transaction

from eventing import emit
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.support.faults import FAULT_MARKS
from tests.waiting import wait_until

pytestmark = FAULT_MARKS

EVENTS = 12


def test_rows_held_for_a_slot_are_delivered_after_the_slot_holder_dies(cluster, receiver):
    # The first call hangs at the receiver (4 s) while its worker is killed; later calls answer.
    path = "/slow-once/4"
    TriggerFactory(type="capped", max_in_flight=2, url=receiver.url(path), timeout_ms=5000)
    worker = cluster.worker("fw1")
    ids = []
    for n in range(EVENTS):
        with transaction.atomic():
            ids.append(emit("capped", {"n": n})[0].id)
    receiver.wait_for(path, 1, timeout_s=30)
    worker.kill()
    assert EventLog.objects.filter(id__in=ids, status=EventStatus.PROCESSING).exists()

    cluster.worker("fw2")  # its sweeper re-stages the lost rows once their leases run out

    wait_until(
        lambda: EventLog.objects.filter(id__in=ids, status=EventStatus.PROCESSED).count() == EVENTS,
        timeout_s=90,
        message="every event processed",
    )
    arrived = [r.json()["data"]["n"] for r in receiver.on(path)]
    assert set(arrived) == set(range(EVENTS))
    # Only a row whose worker died arrives twice; every other row exactly once.
    assert len(arrived) - len(set(arrived)) <= 2
