"""Sending rows found in the table (the sweeper's and the capture listener's way): mark them
sent under SKIP LOCKED, commit, then publish."""

from __future__ import annotations

import datetime as dt

from django.db import connections, transaction
from django.db.models import Q, QuerySet

from eventing.conf import settings
from eventing.dispatch.publish import publish_due
from eventing.models import EventLog
from eventing.store.transitions import mark_sent as mark_rows_sent
from eventing.store.transitions import unmark


def deliverable() -> Q:
    """Rows whose trigger may deliver now (paused and disabled triggers hold their rows)."""
    return Q(trigger__enabled=True, trigger__paused=False)


def send_rows(rows: QuerySet[EventLog], now: dt.datetime, limit: int | None = None) -> int:
    """Mark `rows` sent, commit, then publish them; how many were sent.

    The rows are locked with SKIP LOCKED where the database has it, so two senders at once (two
    sweepers, or a sweeper and the capture listener) each take different rows. A row whose
    publish fails is unmarked, so the next pass sends it.
    """
    due = mark_sent(rows, now, limit)
    # Published after commit: a crash here leaves rows marked sent, found again as lost.
    return publish_marked(due, now)


def mark_sent(rows: QuerySet[EventLog], now: dt.datetime, limit: int | None = None) -> list[tuple]:
    """Lock `rows` (SKIP LOCKED) and mark them sent; (id, deliver_at, trigger_id) of each.

    Publish them with `publish_marked` once the transaction this runs in has committed.
    """
    db = settings.DATABASE
    # No savepoint inside the listener's transaction: it only adds round trips.
    with transaction.atomic(using=db, savepoint=False):
        rows = rows.order_by("deliver_at")
        if connections[db].features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        picked = rows.values_list("id", "deliver_at", "trigger_id")
        due = list(picked[:limit] if limit else picked)
        if due:
            mark_rows_sent([pk for pk, _, _ in due], now)
    return due


def publish_marked(due: list[tuple], now: dt.datetime) -> int:
    """Publish rows `mark_sent` marked (after commit); unmark those that failed; how many sent."""
    failed = publish_due(due, now)
    unmark(failed)
    return len(due) - len(failed)
