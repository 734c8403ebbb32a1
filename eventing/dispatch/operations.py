"""What users do to events: cancel, redeliver, reschedule. The admin and API call these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from eventing.conf import settings
from eventing.dispatch.ordering import release_next
from eventing.dispatch.publish import enqueue_on_commit, within_horizon
from eventing.models import FINAL_STATUSES, EventLog, EventStatus

CANCELLABLE = (EventStatus.STAGED, EventStatus.INTENT)


def cancel_events(event_ids: Iterable, *, reason: str = "Cancelled by a user") -> int:
    """Cancel the staged (or intent) events among `event_ids`; returns how many. The next
    event of a cancelled ordered head is sent once this commits."""
    cancellable = EventLog.objects.filter(id__in=list(event_ids), status__in=CANCELLABLE)
    keys = set(
        cancellable.filter(ordering_key__isnull=False).values_list("trigger_id", "ordering_key")
    )
    cancelled = cancellable.update(
        status=EventStatus.CANCELLED,
        processed_at=timezone.now(),
        remark=reason,
        enqueued_at=None,
    )
    if keys:
        # Robust: the cancel stands if this fails; the sweeper sends the next rows instead.
        transaction.on_commit(lambda: release_next(keys), using=settings.DATABASE, robust=True)
    return cancelled


def redeliver_events(event_ids: Iterable) -> int:
    """Stage finished events again with a fresh retry budget; old invocations are kept."""
    db = settings.DATABASE
    now = timezone.now()
    with transaction.atomic(using=db):
        rows = list(
            EventLog.objects.using(db)
            .select_for_update()
            .filter(id__in=list(event_ids), status__in=FINAL_STATUSES)
        )
        if not rows:
            return 0
        EventLog.objects.using(db).filter(id__in=[row.id for row in rows]).update(
            status=EventStatus.STAGED,
            attempts=0,
            deliver_at=now,
            enqueued_at=now,
            locked_until=None,
            processed_at=None,
            remark="Redelivery requested",
        )
        for row in rows:
            row.deliver_at, row.enqueued_at = now, now
        enqueue_on_commit(rows, using=db)
    return len(rows)


def reschedule_event(event_id, deliver_at: dt.datetime) -> EventLog:
    """Move a staged event's due time; refuses events that are not staged."""
    if timezone.is_naive(deliver_at):
        raise ValidationError({"deliver_at": "Give a time with a timezone."})
    db = settings.DATABASE
    now = timezone.now()
    enqueued_at = now if within_horizon(deliver_at, now) else None
    with transaction.atomic(using=db):
        updated = (
            EventLog.objects.using(db)
            .filter(id=event_id, status=EventStatus.STAGED)
            .update(deliver_at=deliver_at, enqueued_at=enqueued_at)
        )
        if not updated:
            raise ValidationError({"deliver_at": "Only staged events can be rescheduled."})
        event = EventLog.objects.using(db).get(id=event_id)
        if enqueued_at is not None:
            # The old message (if any) finds the row not yet due and steps aside.
            enqueue_on_commit([event], using=db)
    return event
