"""Retention: delete finished events (with their invocations) past EVENTING["RETENTION"] (with
partitioned event tables, eventing.ops.partitions, whole partitions are dropped first), and the
follow-up budgets of chains whose root event is gone."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from django.db import connections, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from eventing.conf import settings
from eventing.models import FINAL_STATUSES, EventLog, FollowUpBudget, InvocationLog
from eventing.ops import partitions

BATCH_SIZE = 500
# SQLite has one write lock and its busy handler retries at most every 100 ms: without a gap
# between batches a waiting emit can lose the race to our next batch again and again (seen:
# 1.5 s waits). PostgreSQL needs no gap: row locks never block inserts.
SQLITE_BATCH_PAUSE_S = 0.1


def expired(status: str, now: dt.datetime):
    """Rows of `status` older than its retention, or None when kept forever."""
    days = (settings.RETENTION or {}).get(status)
    if days is None:
        return None
    cutoff = now - dt.timedelta(days=days)
    return EventLog.objects.filter(status=status, created_at__lt=cutoff)


def delete_expired(
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Delete expired rows in small transactions so concurrent emits never wait long."""
    now = timezone.now()
    report: dict[str, int] = {}
    if not dry_run and partitions.is_partitioned("event_logs"):
        # Whole partitions past retention go at once; rows left in younger ones go below.
        report["partitions_dropped"] = len(partitions.drop_expired(now))
    for status in FINAL_STATUSES:
        rows = expired(status, now)
        if rows is None:
            continue
        if dry_run:
            report[status] = rows.count()
            continue
        total = 0
        while True:
            with transaction.atomic(using=settings.DATABASE):
                batch = rows
                if connections[settings.DATABASE].features.has_select_for_update_skip_locked:
                    # Lock the batch: a redeliver racing with us waits, then finds the row
                    # gone, instead of us deleting a row it has just made staged again.
                    batch = batch.select_for_update(skip_locked=True)
                ids = list(batch.values_list("id", flat=True)[:batch_size])
                if not ids:
                    break
                InvocationLog.objects.filter(event_id__in=ids).delete()
                # Status filter again: without row locks (SQLite holds the whole database
                # instead) the rows are still the ones selected.
                total += rows.filter(id__in=ids).delete()[1].get(EventLog._meta.label, 0)
            if progress:
                progress(status, total)
            if connections[settings.DATABASE].vendor == "sqlite":
                time.sleep(SQLITE_BATCH_PAUSE_S)
        report[status] = total
    if not dry_run:
        delete_orphan_budgets(now)
    return report


def delete_orphan_budgets(now: dt.datetime) -> int:
    """Delete the follow-up budgets whose root event is gone and that began before the longest
    retention: a chain that old has ended, or lost its root to retention like its events."""
    days = [d for d in (settings.RETENTION or {}).values() if d is not None]
    if len(days) < len(FINAL_STATUSES):
        return 0  # some finished rows are kept forever: so are the budgets of their chains
    cutoff = now - dt.timedelta(days=max(days))
    root = EventLog.objects.using(settings.DATABASE).filter(id=OuterRef("root_id"))
    orphans = FollowUpBudget.objects.using(settings.DATABASE).filter(
        ~Exists(root), created_at__lt=cutoff
    )
    return orphans.delete()[0]
