"""Celery tasks. They take ids and call named pipeline functions; the row holds the truth."""

from __future__ import annotations

from collections import Counter

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from eventing.capture.cron import fire_due_ticks
from eventing.delivery.deliver import (
    DeliveryResult,
    deliver_event,
    deliver_events,
    send_next_attempt,
)
from eventing.maintenance.sweeper import sweep as run_sweep
from eventing.ops.partitions import create_ahead
from eventing.ops.retention import delete_expired

# A delivery that hit a database error (restart, failover) is tried again after 1 s, then
# 2, 4… up to DB_RETRY_MAX_S (Celery's retry_backoff, with jitter), for as long as it takes.
DB_RETRY_S = 1
DB_RETRY_MAX_S = 30


class DeliveryTask(Task):
    """A delivery task: retried by Celery on a database error, on a fresh connection.

    Repeating the message is safe: rows not yet claimed are untouched, and claimed ones come
    back to staged when their lease expires.
    """

    acks_late = True
    ignore_result = True
    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = DB_RETRY_S
    retry_backoff_max = DB_RETRY_MAX_S
    max_retries = None  # the database comes back eventually; the rows wait for it

    def on_retry(self, exc, task_id, args, kwargs, einfo) -> None:
        """Drop the broken connection so the retry opens a new one."""
        close_old_connections()


@shared_task(bind=True, base=DeliveryTask, name="eventing.deliver")
def deliver(self, event_id: str, trigger_id: int | None = None) -> str:
    """Attempt delivery of one event; its next attempt, if any, gets a message of its own."""
    result = deliver_event(event_id, trigger_id)
    if not self.request.is_eager:  # an eager run ignores ETAs: the retry would run at once
        send_next_attempt(event_id, result, trigger_id)
    return summary(result)


@shared_task(bind=True, base=DeliveryTask, name="eventing.deliver_batch")
def deliver_batch(self, event_ids: list[str], trigger_id: int | None) -> dict[str, int]:
    """Attempt delivery of several events of one trigger; each next attempt gets a message of
    its own. How many events ended which way."""
    results = deliver_events(event_ids, trigger_id)
    if not self.request.is_eager:
        for event_id, result in results.items():
            send_next_attempt(event_id, result, trigger_id)
    return dict(Counter(summary(result) for result in results.values()))


def summary(result: DeliveryResult) -> str:
    """One word for what a delivery did: "early", why it was skipped, or the row's status."""
    if result.early_until is not None:
        return "early"
    return result.skipped or result.outcome.status


@shared_task(name="eventing.sweep", ignore_result=True)
def sweep() -> dict:
    """One sweeper pass (beat runs this every SWEEP_INTERVAL_S)."""
    return run_sweep()


@shared_task(name="eventing.cleanup", ignore_result=True)
def cleanup() -> dict:
    """Delete finished rows past their retention (beat runs this daily)."""
    return delete_expired()


@shared_task(name="eventing.partitions", ignore_result=True)
def partitions_ahead() -> list[str]:
    """Create the coming partitions of partitioned event tables (beat runs this hourly)."""
    return create_ahead()


@shared_task(name="eventing.cron", ignore_result=True)
def cron() -> dict:
    """Record the due ticks of CRON triggers (beat runs this every few seconds)."""
    return vars(fire_due_ticks())
