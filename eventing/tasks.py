"""Celery tasks. They take ids and call named pipeline functions; the row holds the truth."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections
from django.utils import timezone

from eventing.delivery.deliver import deliver_event, deliver_events
from eventing.dispatch.publish import publish, within_horizon
from eventing.dispatch.sweeper import sweep as run_sweep
from eventing.ops.retention import delete_expired

# Seconds before a delivery that hit a database error is tried again.
DB_RETRY_S = 1.0


@shared_task(
    bind=True, name="eventing.deliver", acks_late=True, max_retries=None, ignore_result=True
)
def deliver(self, event_id: str, trigger_id: int | None = None) -> str:
    """Attempt delivery of one event; schedule the next attempt through Celery's retry."""
    try:
        result = deliver_event(event_id, trigger_id)
    except (OperationalError, InterfaceError) as exc:
        # The database went away (restart, failover): try again shortly on a fresh connection;
        # the row is untouched or leased, so nothing is lost either way.
        close_old_connections()
        raise self.retry(exc=exc, countdown=DB_RETRY_S) from exc
    if result.early_until is not None:
        # Arrived before its time (clock skew, or the event was rescheduled): send it again
        # for the right moment; beyond the horizon the sweeper will.
        if within_horizon(result.early_until) and not self.request.is_eager:
            publish(event_id, result.early_until, trigger_id=trigger_id)
        return "early"
    retry_in = result.retry_in_s
    if retry_in is not None and within_horizon_s(retry_in) and not self.request.is_eager:
        raise self.retry(countdown=retry_in)
    return result.skipped or result.outcome.status


@shared_task(
    bind=True, name="eventing.deliver_batch", acks_late=True, max_retries=None, ignore_result=True
)
def deliver_batch(self, event_ids: list[str], trigger_id: int | None) -> dict[str, int]:
    """Attempt delivery of several events of one trigger; each retry gets a message of its own."""
    try:
        results = deliver_events(event_ids, trigger_id)
    except (OperationalError, InterfaceError) as exc:
        # As in deliver(): rows not yet claimed are untouched, claimed ones come back when
        # their lease expires, so repeating the whole message is safe.
        close_old_connections()
        raise self.retry(exc=exc, countdown=DB_RETRY_S) from exc
    counts: Counter[str] = Counter()
    for event_id, result in results.items():
        counts["early" if result.early_until else result.skipped or result.outcome.status] += 1
        due = result.early_until or retry_due(result.retry_in_s)
        if due is not None and within_horizon(due) and not self.request.is_eager:
            publish(event_id, due, trigger_id=trigger_id)
    return dict(counts)


def retry_due(retry_in_s: float | None) -> dt.datetime | None:
    """When a retry `retry_in_s` from now is due (None: no retry)."""
    return None if retry_in_s is None else timezone.now() + dt.timedelta(seconds=retry_in_s)


def within_horizon_s(seconds: float) -> bool:
    """Whether a retry this far ahead gets a message (else the sweeper sends it when due)."""
    now = timezone.now()
    return within_horizon(now + dt.timedelta(seconds=seconds), now)


@shared_task(name="eventing.sweep", ignore_result=True)
def sweep() -> dict:
    """One sweeper pass (beat runs this every SWEEP_INTERVAL_S)."""
    return run_sweep()


@shared_task(name="eventing.cleanup", ignore_result=True)
def cleanup() -> dict:
    """Delete finished rows past their retention (beat runs this daily)."""
    return delete_expired()
