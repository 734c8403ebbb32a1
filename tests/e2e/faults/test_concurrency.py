"""Several workers and sweepers at once; ETAs outliving Redis' visibility timeout."""

from __future__ import annotations

import datetime as dt
import re
import time

from django.utils import timezone

from eventing import emit
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.support.faults import FAULT_MARKS, burst, statuses, wait_delivered, wait_settled
from tests.waiting import wait_until

pytestmark = FAULT_MARKS


def test_two_workers_two_sweepers_deliver_exactly_once(cluster, receiver):
    TriggerFactory(url=receiver.url("/ok/once"))
    # No process dies here: with production's lease grace a worker starved by a loaded machine
    # keeps the rows it claimed. With the tests' 3 s the sweepers handed them out again while it
    # still sent them (58 of 5,000 delivered twice, at-least-once working as documented).
    grace = {"EVENTING_TEST_LEASE_GRACE_S": "30"}
    cluster.worker("fw1", beat=False, **grace)
    cluster.worker("fw2", beat=False, **grace)
    cluster.beat("fb1", **grace)
    cluster.beat("fb2", **grace)
    started = time.monotonic()
    ids = burst(5000, batch=500)
    seen = wait_delivered(receiver, "/ok/once", ids, timeout_s=150)
    elapsed = time.monotonic() - started
    wait_settled(ids)
    assert statuses(ids) == {EventStatus.PROCESSED: len(ids)}
    repeated = {event_id: n for event_id, n in seen.items() if n > 1}
    assert not repeated, f"{len(repeated)} webhook-ids arrived more than once"
    print(f"5000 events, 2 workers, 2 sweepers: {elapsed:.1f} s")


def test_eta_beyond_visibility_timeout_is_delivered_once(cluster, receiver):
    """Redis hands an unacked ETA message out again after visibility_timeout: one delivery."""
    TriggerFactory(url=receiver.url("/ok/eta"))
    first = cluster.worker("fw1", CELERY_VISIBILITY_TIMEOUT="2")
    due = timezone.now() + dt.timedelta(seconds=12)
    [event] = emit("order_placed", {"later": True}, deliver_at=due)
    assert EventLog.objects.get(id=event.id).enqueued_at is not None  # an ETA message was sent
    wait_until(lambda: received(first), message="the first worker holds the ETA")
    # Once the message has been unacked longer than the visibility timeout, a consumer that
    # starts (or kombu's periodic restore) puts it back in the queue: a second copy.
    time.sleep(2.5)
    second = cluster.worker("fw2", CELERY_VISIBILITY_TIMEOUT="2")
    wait_until(
        lambda: received(first) + received(second) >= 2,
        timeout_s=20,
        message="the ETA message handed out twice",
    )

    wait_until(
        lambda: EventLog.objects.get(id=event.id).status == EventStatus.PROCESSED,
        timeout_s=30,
        message="the scheduled event delivered",
    )
    got = receiver.on("/ok/eta")
    assert got[0].at >= due.timestamp() - 0.1
    # Both copies ran at the ETA; the second found the row already taken.
    wait_until(
        lambda: skipped(first) + skipped(second) >= 1, timeout_s=20, message="the copy skipped"
    )
    assert len(receiver.on("/ok/eta")) == 1


def received(worker) -> int:
    """How many deliver messages the worker received (the test sends one event)."""
    log = worker.log_path.read_text()
    task_ids = re.findall(r"eventing\.deliver\[([0-9a-f-]+)\] received", log)
    return len(task_ids)


def skipped(worker) -> int:
    """Deliver tasks that found their event no longer staged."""
    log = worker.log_path.read_text()
    return sum(
        log.count(f"'{reason}'")
        for reason in ("event is processed", "event is processing", "claimed by another worker")
    )
