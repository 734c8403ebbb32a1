"""A worker killed while delivering an ordered key's head: the head is delivered again when
its lease runs out, and nothing of its key overtakes it."""

from __future__ import annotations

from django.db import transaction

from eventing import emit
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.support.faults import FAULT_MARKS
from tests.waiting import wait_until

pytestmark = FAULT_MARKS


def test_a_head_lost_with_its_worker_is_redelivered_before_the_rest_of_its_key(cluster, receiver):
    # The head's first call hangs at the receiver (4 s) while its worker is killed.
    path = "/slow-once/4"
    TriggerFactory(type="keyed", ordering_key="key", url=receiver.url(path), timeout_ms=5000)
    worker = cluster.worker("fw1")
    with transaction.atomic():
        ids = [emit("keyed", {"key": "k", "seq": seq})[0].id for seq in range(5)]
    receiver.wait_for(path, 1, timeout_s=30)
    worker.kill()
    assert EventLog.objects.get(id=ids[0]).status == EventStatus.PROCESSING

    cluster.worker("fw2")  # its sweeper re-stages the head once the lease runs out

    receiver.wait_for(path, 6, timeout_s=60)
    arrivals = [r.json()["data"]["seq"] for r in sorted(receiver.on(path), key=lambda r: r.at)]
    assert arrivals == [0, 0, 1, 2, 3, 4]
    wait_until(
        lambda: EventLog.objects.filter(id__in=ids, status=EventStatus.PROCESSED).count() == 5,
        timeout_s=30,
        message="every event processed",
    )
