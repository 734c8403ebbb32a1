"""emit(): record one event row per matching trigger and enqueue it when the caller commits."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from triggers import types
from triggers.matching import matches_filter, matches_path
from triggers.registry import TriggerSpec

from .conf import settings
from .enqueue import enqueue_on_commit, within_horizon
from .index import current_index
from .models import EventLog, EventStatus
from .payload_rules import check_payload


def emit(
    type: str,
    payload: Any,
    *,
    deliver_at: dt.datetime | None = None,
    delay_s: float | None = None,
    source: str | None = None,
    idempotency_key: str | None = None,
) -> list[EventLog]:
    """Queue an event of `type` for every enabled trigger that matches it.

    Custom types match triggers by type; DB and FILE types also by `source` (model label or
    storage alias). The rows join the caller's transaction on `EVENTING["DATABASE"]` and are
    sent to the broker when it commits. With `idempotency_key`, a repeat of the same key and
    type returns the rows of the first call and records nothing.
    """
    if not types.NAME_RE.match(type or ""):
        raise ValidationError({"type": "Use only letters, digits and underscores."})
    # Refused here, with the reason, rather than failing later in the database or the worker.
    check_payload(payload)
    due = resolve_due(deliver_at=deliver_at, delay_s=delay_s)
    match_source = (source or "") if type in types.BUILTIN_TYPES else ""
    candidates = current_index().find(type, match_source)
    if type in types.FILE_TYPES:
        name = payload.get("name", "") if isinstance(payload, dict) else ""
        candidates = tuple(t for t in candidates if matches_path(t.path_pattern, name))
    items = [(t, payload) for t in candidates if matches_filter(t.filter, payload)]
    return record_events(
        type, items, source=source or "", due=due, idempotency_key=idempotency_key
    )


def resolve_due(
    *, deliver_at: dt.datetime | None = None, delay_s: float | None = None
) -> dt.datetime:
    """The time an event becomes due, from at most one of `deliver_at` and `delay_s`."""
    now = timezone.now()
    if deliver_at is not None and delay_s is not None:
        raise ValidationError({"deliver_at": "Give deliver_at or delay_s, not both."})
    if delay_s is not None:
        if delay_s < 0:
            raise ValidationError({"delay_s": "The delay cannot be negative."})
        due = now + dt.timedelta(seconds=delay_s)
    elif deliver_at is not None:
        if timezone.is_naive(deliver_at):
            raise ValidationError({"deliver_at": "Give a time with a timezone."})
        due = max(deliver_at, now)
    else:
        due = now
    if due - now > dt.timedelta(seconds=settings.MAX_SCHEDULE_AHEAD_S):
        raise ValidationError(
            {"deliver_at": f"Events can be scheduled at most {settings.MAX_SCHEDULE_AHEAD_S} s "
             "ahead (EVENTING['MAX_SCHEDULE_AHEAD_S'])."}
        )
    return due


def record_events(
    event_type: str,
    items: Iterable[tuple[TriggerSpec, Any]],
    *,
    source: str,
    due: dt.datetime,
    idempotency_key: str | None = None,
    status: str = EventStatus.STAGED,
    using: str | None = None,
) -> list[EventLog]:
    """Insert one row per (trigger, payload) and enqueue the staged ones on commit."""
    items = list(items)
    if not items:
        return []
    db = using or settings.DATABASE
    if idempotency_key:
        existing = find_idempotent(event_type, idempotency_key, db)
        if existing:
            return existing
    now = timezone.now()
    batch_id = uuid.uuid4()
    rows = []
    for trigger, payload in items:
        deliver_at = due + dt.timedelta(seconds=trigger.delay_s) if trigger.delay_s else due
        rows.append(
            EventLog(
                batch_id=batch_id,
                type=event_type,
                trigger_id=trigger.id,
                trigger_name=trigger.name,
                source=source,
                payload=payload,
                status=status,
                deliver_at=deliver_at,
                # Set now, sent on commit: if the process dies in between, the sweeper sees a
                # due row whose message never came and sends it again.
                enqueued_at=now if within_horizon(deliver_at, now) else None,
                created_at=now,
                idempotency_key=idempotency_key,
            )
        )
    try:
        with transaction.atomic(using=db):
            EventLog.objects.using(db).bulk_create(rows)
    except IntegrityError:
        # A concurrent call with the same idempotency key won the race.
        existing = find_idempotent(event_type, idempotency_key, db) if idempotency_key else []
        if existing:
            return existing
        raise
    if status == EventStatus.STAGED:
        enqueue_on_commit(rows, using=db)
    return rows


def find_idempotent(event_type: str, key: str, db: str) -> list[EventLog]:
    """The rows an earlier emit with this key and type recorded."""
    return list(EventLog.objects.using(db).filter(idempotency_key=key, type=event_type))
