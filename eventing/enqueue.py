"""Sending rows to the broker: the fast path; the sweeper covers every message lost here."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from .conf import settings
from .models import EventLog, EventStatus

logger = logging.getLogger(__name__)

# Don't let a dead broker stall the caller's request: one quick retry, then the sweeper.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2}
# After a failed publish this process skips the broker for this long. Without it, during an
# outage every row of every commit waited out the retry policy (200 rows took 25 s); skipped
# rows keep enqueued_at empty and the sweeper sends them once the broker is back.
BROKER_BACKOFF_S = 1.0
_broker_down_until = 0.0


def within_horizon(deliver_at: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Whether an event due at `deliver_at` gets an ETA message now (else the sweeper waits)."""
    now = now or timezone.now()
    return (deliver_at - now).total_seconds() <= settings.ETA_HORIZON_S


def publish(event_id, deliver_at: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Send one deliver message, with an ETA when the event is due later; False if it failed."""
    global _broker_down_until
    from .tasks import deliver

    if time.monotonic() < _broker_down_until:
        return False
    now = now or timezone.now()
    eta = deliver_at if deliver_at > now else None
    try:
        deliver.apply_async(
            (str(event_id),), eta=eta, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # noqa: BLE001 - any broker failure: the row stays for the sweeper
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_S
        logger.warning("Could not publish event %s (%s); the sweeper will send it when the "
                       "broker is back", event_id, exc)
        return False
    return True


def publish_rows(rows: Iterable[EventLog], *, using: str) -> int:
    """Publish the rows that are within the horizon; unmark the ones that failed."""
    now = timezone.now()
    failed = [
        row.id for row in rows
        if row.enqueued_at is not None and not publish(row.id, row.deliver_at, now)
    ]
    if failed:
        # Clearing enqueued_at lets the very next sweep send them, not one lease grace later.
        EventLog.objects.using(using).filter(
            id__in=failed, status=EventStatus.STAGED
        ).update(enqueued_at=None)
    return len(failed)


def enqueue_on_commit(rows: list[EventLog], *, using: str) -> None:
    """Publish `rows` once the transaction holding them commits (never if it rolls back)."""
    transaction.on_commit(lambda: publish_rows(rows, using=using), using=using)
