"""Manual invoke and backfill: existing rows sent to a DB trigger as `MANUAL` events.

The row goes out as `new` (`old` null), rendered exactly as a DB event's row is
(eventing.capture.model_data: sensitive fields left out unless listed, payload_fields kept).
The trigger's own filter is not applied: the operator chose the rows.

Rows are read in primary-key order and recorded a batch at a time, each batch in its own
transaction, so a backfill of a million rows never holds one long transaction and its
progress is the last primary key done. Every row is keyed by (backfill id, primary key): run
again with the same backfill id, from the start or from where it stopped, and rows already
recorded are skipped, so a backfill is idempotent per (trigger, row) and resumable.

Filters choose rows by the model's own concrete fields only, compared with FILTER_LOOKUPS:
no relation traversal and no sensitive field (a count over `auth_token__key__startswith=`
would spell out a credential one character at a time), and errors name only what was given.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldError, ValidationError
from django.db import transaction
from django.db.models import Model, QuerySet

from eventing.capture import model_data
from eventing.conf import settings
from eventing.models import EventLog
from eventing.recording.emit import record_events, resolve_due
from triggers import types
from triggers.models import Trigger
from triggers.registry import TriggerSpec
from triggers.validation import resolve_model

# Lookups a backfill filter may use: equality and ranges (no pattern matching).
FILTER_LOOKUPS = ("exact", "in", "range", "gt", "gte", "lt", "lte")
# Field names always refused in filters, besides EVENTING["EXCLUDE_FIELDS"].
SENSITIVE_NAMES = ("password",)
DEFAULT_BATCH_SIZE = 500
# One INSERT statement per batch: 1,000 rows stay under SQLite's and PostgreSQL's parameter limits.
MAX_BATCH_SIZE = 1000
KEY_PREFIX = "backfill"


@dataclass
class BatchDone:
    """One committed batch: rows recorded, rows skipped (recorded before), where it ended."""

    sent: int
    skipped: int
    last_pk: Any
    done: bool


@dataclass
class Totals:
    """A whole backfill's outcome."""

    backfill_id: str
    total: int
    sent: int = 0
    skipped: int = 0


def db_triggers_of(model: type[Model]) -> QuerySet:
    """The DB triggers whose source is `model` (what a backfill of its rows may go to)."""
    return Trigger.objects.filter(type__in=types.DB_TYPES, source=model._meta.label)


def rows_for(trigger: Trigger, filters: dict[str, Any] | None = None) -> QuerySet:
    """The trigger's model rows matching `filters` (field lookups), in primary-key order."""
    if not types.is_db_type(trigger.type):
        raise ValidationError({"trigger": f"{trigger.name} is not a DB trigger."})
    model = resolve_model(trigger.source)
    if model is None:
        raise ValidationError({"trigger": f"{trigger.source} is not an installed model."})
    for name in filters or {}:
        check_filter_name(model, name)
    try:
        return model._default_manager.filter(**(filters or {})).order_by("pk")
    except FieldError:
        # Django's message lists every field and relation of the model: not repeated.
        raise ValidationError({"filter": "these filters cannot be applied."}) from None
    except (ValueError, TypeError) as exc:
        raise ValidationError({"filter": str(exc)[:300]}) from None


def check_filter_name(model: type[Model], name: str) -> None:
    """`field` or `field__lookup`: a concrete field of `model` itself (by name, attname or
    `pk`), not sensitive, with a lookup of FILTER_LOOKUPS; else ValidationError naming it."""
    field, _, lookup = name.partition("__")
    fields = {f.name: f for f in model._meta.concrete_fields}
    fields.update({f.attname: f for f in model._meta.concrete_fields})
    if field == "pk":
        fields["pk"] = model._meta.pk
    if field not in fields or (lookup and lookup not in FILTER_LOOKUPS):
        raise ValidationError(
            {
                "filter": f"{name!r}: filter on a field of {model._meta.label} itself, "
                f"compared with {', '.join(FILTER_LOOKUPS)} (no relations)."
            }
        )
    if is_sensitive(model, fields[field].name):
        raise ValidationError({"filter": f"{name!r}: this field may not be filtered on."})


def is_sensitive(model: type[Model], name: str) -> bool:
    """Whether a field holds credentials: a name in EXCLUDE_FIELDS or SENSITIVE_NAMES (also
    within a longer name: `api_token_hash`), or the user model's password."""
    lowered = name.lower()
    words = [w.lower() for w in (*settings.EXCLUDE_FIELDS, *SENSITIVE_NAMES)]
    return name in model_data.sensitive_fields(model) or any(w in lowered for w in words)


def parse_filters(pairs: Iterable[str]) -> dict[str, Any]:
    """`field=value` strings (`status__in` and `pk__range` take a,b) as a dict."""
    filters: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValidationError({"filter": f"{pair!r}: write field=value."})
        name = name.strip()
        if name.endswith("__range"):
            bounds = value.split(",")
            if len(bounds) != 2:
                raise ValidationError({"filter": f"{name!r}: write low,high."})
            filters[name] = bounds
        else:
            filters[name] = value.split(",") if name.endswith("__in") else value
    return filters


def new_backfill_id() -> str:
    """A fresh backfill id (rerunning with it skips what it already recorded)."""
    return uuid.uuid4().hex


def row_key(backfill_id: str, pk: Any) -> str:
    """The idempotency key of one row of one backfill (within the column's 200 characters)."""
    key = f"{KEY_PREFIX}:{backfill_id}:{pk}"
    if len(key) <= 200:
        return key
    return f"{KEY_PREFIX}:{backfill_id}:#" + hashlib.sha256(str(pk).encode()).hexdigest()


def manual_data(trigger: Trigger, instance: Model, using: str) -> dict[str, Any]:
    """A row as a MANUAL event's data: a DB event's shape with the row as `new`."""
    hidden = model_data.sensitive_fields(type(instance)).difference(trigger.payload_fields)
    new = model_data.without(model_data.row_values(instance), hidden)
    if trigger.payload_fields:
        new = {name: new[name] for name in trigger.payload_fields if name in new}
    return model_data.db_data(using=using, instance=instance, old=None, new=new, changed=None)


def spec_of(trigger: Trigger) -> TriggerSpec:
    """The trigger as record_events takes it (its delay and ordering key kept)."""
    return TriggerSpec.from_trigger(trigger)


def send_batch(
    trigger: Trigger,
    rows: QuerySet,
    *,
    backfill_id: str,
    after: Any = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> BatchDone:
    """Record the next batch of `rows` after primary key `after` as MANUAL events, committed
    on its own; rows this backfill recorded before are skipped."""
    batch_size = max(1, min(int(batch_size), MAX_BATCH_SIZE))
    page = rows if after is None else rows.filter(pk__gt=after)
    instances = list(page[:batch_size])
    if not instances:
        return BatchDone(sent=0, skipped=0, last_pk=after, done=True)
    keys = [row_key(backfill_id, instance.pk) for instance in instances]
    db = settings.DATABASE
    with transaction.atomic(using=db):
        recorded = set(
            EventLog.objects.using(db)
            .filter(type=types.MANUAL, trigger_name=trigger.name, idempotency_key__in=keys)
            .values_list("idempotency_key", flat=True)
        )
        spec = spec_of(trigger)
        todo = [
            (instance, key)
            for instance, key in zip(instances, keys, strict=True)
            if key not in recorded
        ]
        record_events(
            types.MANUAL,
            [(spec, manual_data(trigger, instance, rows.db)) for instance, _ in todo],
            source=trigger.source,
            due=resolve_due(),
            idempotency_keys=[key for _, key in todo],
        )
    return BatchDone(
        sent=len(todo),
        skipped=len(instances) - len(todo),
        last_pk=model_data.json_safe(instances[-1].pk),
        done=len(instances) < batch_size,
    )


def backfill(
    trigger: Trigger,
    rows: QuerySet,
    *,
    backfill_id: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[Totals, BatchDone], None] | None = None,
) -> Totals:
    """Send every row of `rows` to `trigger` as MANUAL events, batch after batch (count
    first); `on_batch` hears of each committed batch. Rerun with the same id to resume."""
    totals = Totals(backfill_id=backfill_id or new_backfill_id(), total=rows.count())
    after = None
    while True:
        batch = send_batch(
            trigger, rows, backfill_id=totals.backfill_id, after=after, batch_size=batch_size
        )
        totals.sent += batch.sent
        totals.skipped += batch.skipped
        after = batch.last_pk
        if on_batch is not None and (batch.sent or batch.skipped):
            on_batch(totals, batch)
        if batch.done:
            return totals
