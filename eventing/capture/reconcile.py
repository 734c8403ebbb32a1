"""Reconcile: rows a DB trigger's model changed since a time that have no event of that trigger,
found by an `auto_now` field and sent as MANUAL events through the backfill path.

A row counts as covered when the trigger has an event about it (its `pk` in the payload)
recorded no earlier than `slack_s` before the row's timestamp: an event for the change itself,
or a later one (a MANUAL event from an earlier reconcile). The slack absorbs clocks: the
timestamp is set by the writing process, the event's `created_at` by the recording one (or by
the transaction's start in database capture). A row changed twice within the slack, once with
an event and once without, counts as covered.

Rows are read in primary-key order `batch_size` at a time, with one event query per batch (the
GIN payload index answers it on PostgreSQL), so memory stays bounded on any table.

What a timestamp cannot show: `QuerySet.update()` and `bulk_update()` leave `auto_now` fields
as they were unless the call sets them (`update(status="paid", updated=Now())`); deleted rows
are gone, so DB_DELETE triggers cannot be reconciled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from eventing.capture import backfill, model_data
from eventing.models import EventLog
from eventing.ops.search import PayloadFilter, filter_by_payload
from triggers import types
from triggers.models import Trigger
from triggers.validation import resolve_model

DEFAULT_SLACK_S = 5.0
RECONCILE_PREFIX = "reconcile-"


@dataclass
class Reconciled:
    """One reconcile run: rows read, rows without an event, rows sent (0 in a dry run)."""

    checked: int = 0
    missing: int = 0
    sent: int = 0
    backfill_id: str = ""
    sample: list[Any] = field(default_factory=list)


def model_of(trigger: Trigger) -> type[models.Model]:
    """The trigger's model; ValidationError naming the trigger when it has none to reconcile."""
    if not types.is_db_type(trigger.type):
        raise ValidationError({"trigger": f"{trigger.name} is not a DB trigger."})
    if trigger.type == types.DB_DELETE:
        raise ValidationError(
            {"trigger": f"{trigger.name} is a DB_DELETE trigger: deleted rows are gone."}
        )
    model = resolve_model(trigger.source)
    if model is None:
        raise ValidationError({"trigger": f"{trigger.source} is not an installed model."})
    return model


def changed_field(model: type[models.Model], trigger_type: str, name: str | None = None) -> str:
    """The timestamp that says when a row changed: `name` (a DateTimeField of the model), else
    its `auto_now` field (an INSERT trigger prefers `auto_now_add`)."""
    fields = [f for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField)]
    if name is not None:
        for candidate in fields:
            if name in (candidate.name, candidate.attname):
                return candidate.name
        raise ValidationError(
            {"field": f"{name!r} is not a date-time field of {model._meta.label}."}
        )
    order = [lambda f: f.auto_now]
    if trigger_type == types.DB_INSERT:
        order.insert(0, lambda f: f.auto_now_add)
    for wanted in order:
        found = [f.name for f in fields if wanted(f)]
        if found:
            return found[0]
    raise ValidationError(
        {
            "field": f"{model._meta.label} has no auto_now date-time field to tell which rows "
            "changed: name one with --field."
        }
    )


def changed_rows(
    model: type[models.Model], field_name: str, since: dt.datetime, batch_size: int
) -> Iterator[list[tuple[Any, dt.datetime]]]:
    """(pk, timestamp) of the rows changed since `since`, a batch at a time in pk order."""
    rows = (
        model._default_manager.filter(**{f"{field_name}__gte": since})
        .order_by("pk")
        .values_list("pk", field_name)
    )
    after = None
    while True:
        page = rows if after is None else rows.filter(pk__gt=after)
        batch = list(page[:batch_size])
        if not batch:
            return
        yield batch
        after = batch[-1][0]


def latest_events(trigger: Trigger, keys: list[Any], since: dt.datetime) -> dict[Any, dt.datetime]:
    """Payload pk -> the latest `created_at` of the trigger's events about those rows."""
    events = EventLog.objects.filter(trigger_id=trigger.pk, created_at__gte=since)
    events = filter_by_payload(events, [PayloadFilter("pk", ("pk",), tuple(keys))])
    latest: dict[Any, dt.datetime] = {}
    for key, created in events.order_by().values_list("payload__pk", "created_at"):
        if key not in latest or created > latest[key]:
            latest[key] = created
    return latest


def missing_pks(
    trigger: Trigger, batch: list[tuple[Any, dt.datetime]], since: dt.datetime, slack_s: float
) -> list[Any]:
    """The pks of `batch` with no event of `trigger` since their timestamp (less the slack)."""
    slack = dt.timedelta(seconds=slack_s)
    keys = [model_data.json_safe(pk) for pk, _ in batch]
    latest = latest_events(trigger, keys, since - slack)
    return [
        pk
        for (pk, changed), key in zip(batch, keys, strict=True)
        if key not in latest or latest[key] < changed - slack
    ]


def reconcile(
    trigger: Trigger,
    since: dt.datetime,
    *,
    field_name: str | None = None,
    send: bool = False,
    slack_s: float = DEFAULT_SLACK_S,
    batch_size: int = backfill.DEFAULT_BATCH_SIZE,
    on_batch: Callable[[Reconciled], None] | None = None,
) -> Reconciled:
    """Find the rows changed since `since` without an event of `trigger`; with `send`, record
    each batch of them as MANUAL events (committed batch by batch), else only count them."""
    model = model_of(trigger)
    name = changed_field(model, trigger.type, field_name)
    batch_size = max(1, min(int(batch_size), backfill.MAX_BATCH_SIZE))
    result = Reconciled(backfill_id=RECONCILE_PREFIX + backfill.new_backfill_id())
    for batch in changed_rows(model, name, since, batch_size):
        result.checked += len(batch)
        missing = missing_pks(trigger, batch, since, slack_s)
        result.missing += len(missing)
        result.sample.extend(missing[: max(0, 10 - len(result.sample))])
        if send and missing:
            rows = model._default_manager.filter(pk__in=missing).order_by("pk")
            done = backfill.send_batch(
                trigger, rows, backfill_id=result.backfill_id, batch_size=len(missing)
            )
            result.sent += done.sent
        if on_batch is not None:
            on_batch(result)
    return result
