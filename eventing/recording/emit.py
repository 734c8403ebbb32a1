"""emit(): record one event row per matching trigger and enqueue it when the caller commits."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils import timezone

from eventing.conf import settings
from eventing.dispatch.publish import enqueue_on_commit, within_horizon
from eventing.models import EventLog, EventStatus
from eventing.ops.metrics import count_emitted
from eventing.owners import OwnerKey, owner_key
from eventing.recording.payload_rules import check_payload, same_json
from eventing.recording.subscriptions import subscription_items
from eventing.store.rows import insert_events
from eventing.store.trigger_cache import current_index
from triggers import types
from triggers.matching import matches_filter, matches_path, ordering_value
from triggers.models import Trigger
from triggers.registry import TriggerSpec

# Rows per INSERT statement: keeps SQLite under its variable limit, PostgreSQL fast.
BULK_BATCH_SIZE = 500

# Sent once rows are recorded, by emit() also when no trigger matched: `type`, `payload` (None
# when each row has its own), `source`, `rows` and `owner` (None unless given). eventing.testing
# records what a code path emits from it; with no receiver connected it costs nothing.
recorded = Signal()


def emit(
    type: str,
    payload: Any,
    *,
    deliver_at: dt.datetime | None = None,
    delay_s: float | None = None,
    source: str | None = None,
    idempotency_key: str | None = None,
    owner: Any = None,
) -> list[EventLog]:
    """Queue an event of `type` for every enabled trigger that matches it.

    With `owner` (an instance of EVENTING["OWNER_MODEL"]) it also reaches that owner's
    subscriptions to the type; without one, no owner's subscription receives it.

    Custom types match triggers by type; DB and FILE types also by `source` (model label or
    storage alias). The rows join the caller's transaction on `EVENTING["DATABASE"]` and are
    sent to the broker when it commits. With `idempotency_key`, a repeat of the same key and
    type with the same payload returns the rows of the first call and records nothing; with
    another payload it raises IdempotencyConflict (see `repeat_of`).
    """
    if not types.NAME_RE.match(type or ""):
        raise ValidationError({"type": "Use only letters, digits and underscores."})
    # Refused here, with the reason, rather than failing later in the database or the worker.
    check_payload(payload)
    request = EventRequest(
        type=type,
        payload=payload,
        due=resolve_due(deliver_at=deliver_at, delay_s=delay_s),
        source=source or "",
        idempotency_key=idempotency_key,
        owner=None if owner is None else owner_key(owner),
    )
    return emit_batch([request])[0].rows


def matching_triggers(event_type: str, payload: Any, source: str = "") -> list[TriggerSpec]:
    """The enabled triggers an event of `event_type` from `source` with `payload` goes to."""
    match_source = source if event_type in types.BUILTIN_TYPES else ""
    candidates = current_index().find(event_type, match_source)
    if event_type in types.FILE_TYPES:
        name = payload.get("name", "") if isinstance(payload, dict) else ""
        candidates = tuple(t for t in candidates if matches_path(t.path_pattern, name))
    return [t for t in candidates if matches_filter(t.filter, payload)]


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
            {
                "deliver_at": f"Events can be scheduled at most {settings.MAX_SCHEDULE_AHEAD_S} s "
                "ahead (EVENTING['MAX_SCHEDULE_AHEAD_S'])."
            }
        )
    return due


def record_events(
    event_type: str,
    items: Iterable[tuple[TriggerSpec, Any]],
    *,
    source: str,
    due: dt.datetime,
    status: str = EventStatus.STAGED,
    using: str | None = None,
    publish: bool = True,
    idempotency_key: str | None = None,
    idempotency_keys: Sequence[str] | None = None,
) -> list[EventLog]:
    """Insert one row per (trigger, payload); staged rows go to the broker on commit.

    With `publish=False` they do not: the caller delivers them now (eventing.delivery.
    synchronous), and the sweeper sends them if it never does. An `idempotency_key` already
    used for this type and trigger raises IntegrityError (the unique constraint);
    `idempotency_keys`, one per item, key each row on its own (a backfill keys rows by backfill
    id and primary key).
    """
    items = list(items)
    if not items:
        return []
    db = using or settings.DATABASE
    rows = build_rows(
        event_type,
        items,
        source=source,
        due=due,
        idempotency_keys=idempotency_keys or [idempotency_key] * len(items),
        status=status,
        now=timezone.now(),
    )
    insert_events(rows, using=db)
    if recorded.receivers:  # only eventing.testing listens: skip building the call otherwise
        recorded.send(None, type=event_type, payload=None, source=source, rows=rows, owner=None)
    send_on_commit(rows, using=db, publish=publish and status == EventStatus.STAGED)
    return rows


def send_on_commit(rows: list[EventLog], *, using: str, publish: bool) -> None:
    """Once the caller commits: count the rows as emitted and, with `publish`, send them to
    the broker (one callback either way: a save() with a trigger pays for one)."""
    if publish:
        enqueue_on_commit(rows, using=using, count=True)
    else:
        transaction.on_commit(lambda: count_emitted(rows), using=using)


def record_test_event(trigger: Trigger, payload: Any, *, source: str) -> EventLog:
    """An event for this one trigger (its filter aside), due now and not sent to the broker:
    the caller delivers it at once (eventing.delivery.synchronous)."""
    check_payload(payload)
    # Sent now: neither the trigger's delay nor its key's order holds a test event back.
    spec = TriggerSpec.from_trigger(trigger, delay_s=0.0, ordering_key="")
    [event] = record_events(
        trigger.type, [(spec, payload)], source=source, due=timezone.now(), publish=False
    )
    return event


def build_rows(
    event_type: str,
    items: Iterable[tuple[TriggerSpec, Any]],
    *,
    source: str,
    due: dt.datetime,
    idempotency_keys: Sequence[str | None],
    status: str,
    now: dt.datetime,
    position_from: int = 0,
) -> list[EventLog]:
    """Unsaved rows of one emit (one batch id), each due after its trigger's own delay and
    keyed by its entry of `idempotency_keys`.

    `position_from`: how many rows of the same transaction's batch came before (ordering)."""
    batch_id = uuid.uuid4()
    rows = []
    keyed = zip(items, idempotency_keys, strict=True)
    for position, ((trigger, payload), idempotency_key) in enumerate(keyed, start=position_from):
        deliver_at = due + dt.timedelta(seconds=trigger.delay_s) if trigger.delay_s else due
        key = ordering_value(trigger.ordering_key, payload)
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
                # Ordered rows of one batch get distinct times in batch order: created_at is
                # the order their key is delivered in.
                created_at=now + dt.timedelta(microseconds=position) if key is not None else now,
                idempotency_key=idempotency_key,
                ordering_key=key,
            )
        )
    return rows


@dataclass
class EventRequest:
    """One event of a batch: what `emit()` takes, with the due time already resolved."""

    type: str
    payload: Any
    due: dt.datetime
    source: str = ""
    idempotency_key: str | None = None
    # Whose subscriptions it also reaches (eventing.owners); None: operators' triggers only.
    owner: OwnerKey | None = None


@dataclass
class BatchItem:
    """The rows recorded for one request of a batch; `created` is False for a repeat."""

    rows: list[EventLog]
    created: bool


class IdempotencyConflict(ValidationError):
    """An idempotency key was used again for the same type with a different payload."""

    def __init__(self, index: int, key: str) -> None:
        self.index, self.key = index, key
        super().__init__(
            {
                "idempotency_key": f"Key {key!r} was already used for this type with a different "
                "payload."
            }
        )


def emit_batch(
    requests: Sequence[EventRequest], *, publish: bool = True, using: str | None = None
) -> list[BatchItem]:
    """Record many events in one transaction with one bulk insert; one item per request.

    Each request is matched like `emit()` and keyed by `repeat_of`: a key already used
    (earlier, or earlier in this batch) returns the first rows and records nothing, or raises
    IdempotencyConflict when its payload differs. With `publish=False` nothing is sent to the
    broker: the caller delivers the rows itself (synchronous mode) and the sweeper covers it if
    that fails.
    """
    db = using or settings.DATABASE
    try:
        return record_batch(requests, publish=publish, db=db)
    except IntegrityError:
        if not any(request.idempotency_key for request in requests):
            raise
        # A concurrent call took one of these keys after our look-up (the unique constraint
        # said so; the savepoint kept the caller's transaction usable): look again, so the
        # rows it recorded answer by the same rule.
        return record_batch(requests, publish=publish, db=db)


def repeat_of(earlier: list[EventLog], request: EventRequest, index: int = 0) -> list[EventLog]:
    """The answer to an idempotency key used again for the same type: the rows the first use
    recorded if the payload is the same JSON, else IdempotencyConflict (`index`: its position
    in the batch). The one rule, for `emit()`, `emit_batch()` and so the API."""
    if earlier and not same_json(earlier[0].payload, request.payload):
        raise IdempotencyConflict(index, request.idempotency_key or "")
    return earlier


def record_batch(requests: Sequence[EventRequest], *, publish: bool, db: str) -> list[BatchItem]:
    """emit_batch() once: look the keys up, build the new rows, insert them together."""
    now = timezone.now()
    earlier = find_idempotent_many(
        {(r.type, r.idempotency_key) for r in requests if r.idempotency_key}, db
    )
    results: list[BatchItem] = []
    new_rows: list[EventLog] = []
    emitted: list[tuple[EventRequest, list[EventLog]]] = []
    for index, request in enumerate(requests):
        key = (request.type, request.idempotency_key)
        if request.idempotency_key and key in earlier:
            results.append(BatchItem(rows=repeat_of(earlier[key], request, index), created=False))
            continue
        items = [
            (t, request.payload)
            for t in matching_triggers(request.type, request.payload, request.source)
        ]
        items += subscription_items(request.owner, request.type, request.payload)
        rows = build_rows(
            request.type,
            items,
            source=request.source,
            due=request.due,
            idempotency_keys=[request.idempotency_key] * len(items),
            status=EventStatus.STAGED,
            now=now,
            position_from=len(new_rows),
        )
        if request.idempotency_key and rows:
            earlier[key] = rows
        new_rows.extend(rows)
        results.append(BatchItem(rows=rows, created=bool(rows)))
        emitted.append((request, rows))
    if not new_rows:
        announce(emitted)
        return results
    # One INSERT is atomic on its own (no BEGIN/COMMIT round trips in autocommit). Several, or
    # a key a concurrent call may take first, need a transaction: a savepoint inside the
    # caller's, which then survives losing that race.
    keyed = any(request.idempotency_key for request in requests)
    atomic = keyed or len(new_rows) > BULK_BATCH_SIZE
    with transaction.atomic(using=db) if atomic else contextlib.nullcontext():
        for start in range(0, len(new_rows), BULK_BATCH_SIZE):
            insert_events(new_rows[start : start + BULK_BATCH_SIZE], using=db)
        announce(emitted)
        send_on_commit(new_rows, using=db, publish=publish)
    return results


def announce(emitted: Sequence[tuple[EventRequest, list[EventLog]]]) -> None:
    """Send `recorded` for each request of a batch that was emitted (not an idempotent repeat)."""
    if not recorded.receivers:
        return
    for request, rows in emitted:
        recorded.send(
            None,
            type=request.type,
            payload=request.payload,
            source=request.source,
            rows=rows,
            # Set by emit(..., owner=...) where owners exist; None otherwise.
            owner=getattr(request, "owner", None),
        )


def find_idempotent_many(
    keys: set[tuple[str, str]], db: str
) -> dict[tuple[str, str], list[EventLog]]:
    """Rows already recorded under any of these (type, idempotency key) pairs, by pair."""
    found: dict[tuple[str, str], list[EventLog]] = {}
    if not keys:
        return found
    rows = (
        EventLog.objects.using(db)
        .filter(idempotency_key__in={key for _, key in keys}, type__in={t for t, _ in keys})
        .order_by("trigger_name")
    )
    for row in rows:
        pair = (row.type, row.idempotency_key)
        if pair in keys:
            found.setdefault(pair, []).append(row)
    return found
