"""Every move of an event row between states that is not the hot path's claim and finish
(eventing.store.rows): each written once, conditional on the state it leaves, so a row moved
meanwhile by another process is left alone. Callers decide when; these say how."""

from __future__ import annotations

import datetime as dt

from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Greatest

from eventing.conf import settings
from eventing.models import FINAL_STATUSES, EventLog, EventStatus
from eventing.store.predicates import due, lost_lease

CANCELLABLE = (EventStatus.STAGED, EventStatus.INTENT)


def _rows():
    return EventLog.objects.using(settings.DATABASE)


def mark_sent(event_ids: list, now: dt.datetime) -> int:
    """Staged rows got a message at `now` (the sweeper takes them for lost if never taken)."""
    return _rows().filter(id__in=event_ids).update(enqueued_at=now)


def release_oldest(trigger_id: int, remark: str, count: int, now: dt.datetime) -> list[tuple]:
    """Make the `count` oldest staged rows of a trigger held back with `remark` due now, marked
    sent; (id, deliver_at, trigger_id) of each, to publish."""
    if count <= 0:
        return []
    waiting = _rows().filter(trigger_id=trigger_id, status=EventStatus.STAGED, remark=remark)
    ids = list(waiting.order_by("created_at").values_list("id", flat=True)[:count])
    if not ids:
        return []
    released = waiting.filter(id__in=ids).update(deliver_at=now, enqueued_at=now)
    return [(pk, now, trigger_id) for pk in ids][:released]


def unmark(event_ids: list) -> int:
    """Staged rows whose message was not sent after all (or is spent): the sweeper sends them."""
    if not event_ids:
        return 0
    return _rows().filter(id__in=event_ids, status=EventStatus.STAGED).update(enqueued_at=None)


def hand_back(event_ids: list, deliver_at: dt.datetime, remark: str, now: dt.datetime) -> int:
    """processing → staged with the attempt taken back (never made), due at `deliver_at`, a
    message on its way (a throttle held the rows back before sending)."""
    return (
        _rows()
        .filter(id__in=event_ids, status=EventStatus.PROCESSING)
        .update(
            status=EventStatus.STAGED,
            attempts=F("attempts") - 1,
            locked_until=None,
            deliver_at=deliver_at,
            enqueued_at=now,
            remark=remark,
        )
    )


def hold_until(event_ids: list, until: dt.datetime, remark: str, now: dt.datetime) -> int:
    """Due staged rows wait, without an attempt or a message, until at least `until`."""
    return (
        _rows()
        .filter(due(now), id__in=event_ids, status=EventStatus.STAGED)
        .update(
            deliver_at=Greatest(F("deliver_at"), Value(until, output_field=DateTimeField())),
            enqueued_at=None,
            remark=remark,
        )
    )


def release_held(trigger_id: int, remark_prefix: str, now: dt.datetime) -> int:
    """Staged rows of a trigger held with a remark starting `remark_prefix` are due now; the
    sweeper sends them."""
    return (
        _rows()
        .filter(
            trigger_id=trigger_id,
            status=EventStatus.STAGED,
            deliver_at__gt=now,
            remark__startswith=remark_prefix,
        )
        .update(deliver_at=now, enqueued_at=None)
    )


def release_lost_leases(now: dt.datetime, remark: str) -> int:
    """processing → staged, without a message, for rows whose lease ran out."""
    return (
        _rows()
        .filter(lost_lease(now))
        .update(status=EventStatus.STAGED, locked_until=None, enqueued_at=None, remark=remark)
    )


def fail_lost(event_id, attempt: int, remark: str, now: dt.datetime) -> bool:
    """processing → failed for a row whose last attempt's worker vanished; True if it moved."""
    return bool(
        _rows()
        .filter(id=event_id, status=EventStatus.PROCESSING, attempts=attempt)
        .update(status=EventStatus.FAILED, locked_until=None, processed_at=now, remark=remark)
    )


def cancel(event_ids: list, remark: str, now: dt.datetime) -> int:
    """staged / intent → cancelled."""
    return (
        _rows()
        .filter(id__in=event_ids, status__in=CANCELLABLE)
        .update(status=EventStatus.CANCELLED, processed_at=now, remark=remark, enqueued_at=None)
    )


def redeliver(event_ids: list, remark: str, now: dt.datetime) -> int:
    """processed / failed / cancelled → staged, due now with a message, a fresh retry budget."""
    return (
        _rows()
        .filter(id__in=event_ids, status__in=FINAL_STATUSES)
        .update(
            status=EventStatus.STAGED,
            attempts=0,
            deliver_at=now,
            enqueued_at=now,
            locked_until=None,
            processed_at=None,
            remark=remark,
        )
    )


def reschedule(event_id, deliver_at: dt.datetime, enqueued_at: dt.datetime | None) -> bool:
    """A staged row's due time moves (with a message when `enqueued_at`); True if it did."""
    return bool(
        _rows()
        .filter(id=event_id, status=EventStatus.STAGED)
        .update(deliver_at=deliver_at, enqueued_at=enqueued_at)
    )
