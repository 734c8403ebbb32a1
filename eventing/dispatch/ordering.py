"""Ordered delivery per key: which rows wait behind an earlier one, and sending the next.

A row with an `ordering_key` is claimable only when no earlier row (by created_at, then id) of
the same trigger and key is unfinished (intent, staged or processing). The rule lives in the
claim statement and in the sweeper's query, so it holds across worker processes and crashes.
When a head finishes, the next row of its key is sent at once (`release_next`); a row that was
found blocked keeps no message (`enqueued_at` empty) and the sweeper sends it once unblocked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from eventing.conf import settings
from eventing.dispatch.publish import publish_due
from eventing.models import UNFINISHED_STATUSES, EventLog, EventStatus

# Keys per release statement: a batch finishes up to DELIVERY_BATCH_SIZE heads at once.
RELEASE_CHUNK = 100


def earlier_unfinished(row_table: str, qn) -> tuple[str, list]:
    """SQL true when the row of `row_table` waits behind an earlier unfinished row of its key.

    The subquery walks the partial index event_logs_ordering_queue; a row without a key never
    reaches it (the caller tests `ordering_key IS NULL` first).
    """
    table = qn(EventLog._meta.db_table)
    ahead, row = "ahead", row_table

    def col(alias: str, name: str) -> str:
        return f"{alias}.{qn(name)}"

    sql = (
        f"EXISTS (SELECT 1 FROM {table} AS {ahead} "
        f"WHERE {col(ahead, 'trigger_id')} = {col(row, 'trigger_id')} "
        f"AND {col(ahead, 'ordering_key')} = {col(row, 'ordering_key')} "
        f"AND {col(ahead, 'status')} IN ({', '.join(['%s'] * len(UNFINISHED_STATUSES))}) "
        f"AND ({col(ahead, 'created_at')} < {col(row, 'created_at')} "
        f"OR ({col(ahead, 'created_at')} = {col(row, 'created_at')} "
        f"AND {col(ahead, 'id')} < {col(row, 'id')})))"
    )
    return sql, list(UNFINISHED_STATUSES)


def claimable_sql(row_table: str, qn) -> tuple[str, list]:
    """SQL true when the row is unordered or first of its key (the claim's extra condition)."""
    blocked, params = earlier_unfinished(row_table, qn)
    return f"({qn('ordering_key')} IS NULL OR NOT {blocked})", params


def queue_of(trigger_id, key) -> QuerySet:
    """The unfinished rows of one trigger and key (values or OuterRefs)."""
    return EventLog.objects.using(settings.DATABASE).filter(
        trigger_id=trigger_id, ordering_key=key, status__in=UNFINISHED_STATUSES
    )


def not_blocked() -> Q:
    """Rows the sweeper may send: unordered, or first of their key."""
    earlier = queue_of(OuterRef("trigger_id"), OuterRef("ordering_key")).filter(
        Q(created_at__lt=OuterRef("created_at"))
        | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
    )
    return Q(ordering_key__isnull=True) | ~Exists(earlier)


def head_of_key(event: EventLog) -> EventLog | None:
    """The row `event` waits behind (the oldest unfinished one of its key), or None."""
    if event.ordering_key is None or event.trigger_id is None:
        return None
    head = queue_of(event.trigger_id, event.ordering_key).order_by("created_at", "id").first()
    return head if head is not None and head.id != event.id else None


def park(event_ids: list, now: dt.datetime) -> set:
    """Rows of `event_ids` that were due but not claimed because their key is busy: their
    message is spent, so clear `enqueued_at` (the sweeper sends them once unblocked)."""
    if not event_ids:
        return set()
    parked = EventLog.objects.using(settings.DATABASE).filter(
        id__in=event_ids,
        status=EventStatus.STAGED,
        ordering_key__isnull=False,
        deliver_at__lte=now,
    )
    ids = set(parked.values_list("id", flat=True))
    if ids:
        EventLog.objects.using(settings.DATABASE).filter(
            id__in=ids, status=EventStatus.STAGED
        ).update(enqueued_at=None)
    return ids


def release_next(keys: Iterable[tuple[int, str]], now: dt.datetime | None = None) -> int:
    """Send the next row of each (trigger id, key) whose head just finished; how many were sent.

    Only a staged row due within the horizon is sent, and it is marked sent in the same
    statement that finds it; the rest wait for the sweeper like any row.
    """
    now = now or timezone.now()
    keys = sorted(set(keys))
    sent = 0
    for start in range(0, len(keys), RELEASE_CHUNK):
        sent += release_chunk(keys[start : start + RELEASE_CHUNK], now)
    return sent


def release_chunk(keys: list[tuple[int, str]], now: dt.datetime) -> int:
    """release_next() for up to RELEASE_CHUNK keys: one UPDATE, then the messages."""
    if not keys:
        return 0
    db = settings.DATABASE
    connection = connections[db]
    qn = connection.ops.quote_name
    table = qn(EventLog._meta.db_table)
    statuses = ", ".join(["%s"] * len(UNFINISHED_STATUSES))
    head = (
        f"(SELECT {qn('id')} FROM {table} WHERE {qn('trigger_id')} = %s "
        f"AND {qn('ordering_key')} = %s AND {qn('status')} IN ({statuses}) "
        f"ORDER BY {qn('created_at')}, {qn('id')} LIMIT 1)"
    )
    horizon = now + dt.timedelta(seconds=settings.ETA_HORIZON_S)
    deliver_at = EventLog._meta.get_field("deliver_at")
    enqueued_at = EventLog._meta.get_field("enqueued_at")
    sql = (
        f"UPDATE {table} SET {qn('enqueued_at')} = %s "
        f"WHERE {qn('id')} IN ({', '.join([head] * len(keys))}) "
        f"AND {qn('status')} = %s AND {qn('deliver_at')} <= %s RETURNING {qn('id')}"
    )
    params: list = [enqueued_at.get_db_prep_save(now, connection)]
    for trigger_id, key in keys:
        params += [trigger_id, key, *UNFINISHED_STATUSES]
    params += [EventStatus.STAGED, deliver_at.get_db_prep_save(horizon, connection)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [EventLog._meta.pk.to_python(row[0]) for row in cursor.fetchall()]
    if not ids:
        return 0
    due = list(
        EventLog.objects.using(db).filter(id__in=ids).values_list("id", "deliver_at", "trigger_id")
    )
    failed = publish_due(due, now)
    if failed:
        # Unmarked, the next sweep sends them.
        EventLog.objects.using(db).filter(id__in=failed, status=EventStatus.STAGED).update(
            enqueued_at=None
        )
    return len(due) - len(failed)
