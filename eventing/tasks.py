"""Celery tasks. They take ids and call named pipeline functions; the row holds the truth."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections
from django.utils import timezone

from .enqueue import publish, within_horizon

# Seconds before a delivery that hit a database error is tried again.
DB_RETRY_S = 1.0


@shared_task(
    bind=True, name="eventing.deliver", acks_late=True, max_retries=None, ignore_result=True
)
def deliver(self, event_id: str, trigger_id: int | None = None) -> str:
    """Attempt delivery of one event; schedule the next attempt through Celery's retry."""
    from .delivery import deliver_event

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


def within_horizon_s(seconds: float) -> bool:
    """Whether a retry this far ahead gets a message (else the sweeper sends it when due)."""
    now = timezone.now()
    return within_horizon(now + dt.timedelta(seconds=seconds), now)


@shared_task(name="eventing.sweep", ignore_result=True)
def sweep() -> dict:
    """One sweeper pass (beat runs this every SWEEP_INTERVAL_S)."""
    from .sweeper import sweep as run_sweep

    return run_sweep()


@shared_task(name="eventing.cleanup", ignore_result=True)
def cleanup() -> dict:
    """Delete finished rows past their retention (beat runs this daily)."""
    from .retention import delete_expired

    return delete_expired()
