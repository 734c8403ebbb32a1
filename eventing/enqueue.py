"""Sending rows to the broker: the fast path; the sweeper covers every message lost here."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from .conf import settings
from .models import EventLog, EventStatus

logger = logging.getLogger(__name__)

# Don't let a dead broker stall the caller's request: one quick retry, then the sweeper.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2}


def within_horizon(deliver_at: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Whether an event due at `deliver_at` gets an ETA message now (else the sweeper waits)."""
    now = now or timezone.now()
    return (deliver_at - now).total_seconds() <= settings.ETA_HORIZON_S


def publish(event_id, deliver_at: dt.datetime, now: dt.datetime | None = None,
            trigger_id: int | None = None) -> bool:
    """Send one deliver message, with an ETA when the event is due later; False if it failed."""
    from .tasks import deliver

    now = now or timezone.now()
    eta = deliver_at if deliver_at > now else None
    try:
        deliver.apply_async(
            (str(event_id), trigger_id), eta=eta, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception:  # noqa: BLE001 - any broker failure: the row stays for the sweeper
        logger.warning("Could not publish event %s; the sweeper will retry", event_id,
                       exc_info=True)
        return False
    return True


def publish_rows(rows: Iterable[EventLog], *, using: str) -> int:
    """Publish the rows that are within the horizon; unmark the ones that failed."""
    now = timezone.now()
    failed = [
        row.id for row in rows
        if row.enqueued_at is not None
        and not publish(row.id, row.deliver_at, now, trigger_id=row.trigger_id)
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
