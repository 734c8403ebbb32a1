"""Synchronous delivery: deliver rows now, side by side, and retry them as a worker would.

The API's `isSynchronous` queueing, its trigger test, and Mission Control's queue page and test
events all deliver through `deliver_now`. The rows are recorded due now without a broker
message (`publish=False`): this request delivers them, and if it dies first the sweeper finds
them as it finds any lost message. A failed attempt then gets its retry message exactly as a
worker's would, due when the row says.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from eventing.delivery.deliver import DeliveryResult, deliver_event, send_next_attempt
from eventing.models import EventLog

# Deliveries to several triggers run side by side, so the wait is the slowest one.
MAX_THREADS = 8


def deliver_now(events: Sequence[EventLog]) -> list[DeliveryResult]:
    """Deliver these events at once, side by side, each bounded by its trigger's timeout; one
    result per event, in order. Retries are scheduled as a worker schedules them."""
    ids = [event.id for event in events]
    if len(ids) <= 1:
        # In the caller's thread: its connection (and, in tests, its transaction) sees the rows.
        return [deliver_and_schedule(event_id) for event_id in ids]
    with ThreadPoolExecutor(max_workers=min(len(ids), MAX_THREADS)) as pool:
        return list(pool.map(deliver_in_thread, ids))


def deliver_in_thread(event_id) -> DeliveryResult:
    """A delivery on a pool thread, which must close its own database connections."""
    try:
        return deliver_and_schedule(event_id)
    finally:
        connections.close_all()


def deliver_and_schedule(event_id) -> DeliveryResult:
    """One attempt now, whatever the due time; a failed one is retried through the broker."""
    result = deliver_event(event_id, force=True)
    if result.event is not None:
        send_next_attempt(event_id, result, result.event.trigger_id)
    elif result.next_message_at is not None:  # held back by the trigger's rate or in-flight cap
        send_next_attempt(event_id, result, None)
    return result


def delivered(result: DeliveryResult) -> bool:
    """Whether the webhook took the event (the outcome rules' success)."""
    return result.outcome is not None and result.outcome.succeeded


def why_not_delivered(result: DeliveryResult) -> str:
    """Why an attempt did not deliver, in words; "" when it did."""
    if result.skipped:
        return f"not delivered ({result.skipped})"
    if result.outcome is None:
        return "no outcome"
    return "" if result.outcome.succeeded else result.outcome.remark
