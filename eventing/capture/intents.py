"""File intents: the two-phase record of a storage operation, and the sweeper step for orphans.

Before a storage operation one `intent` row per matching trigger is written; after it the rows
become `staged` (and are enqueued) or, if the operation raised, `cancelled` with the error as
remark. Rows are written outside the caller's transaction (see `eventing.capture.detached`), because
the file does not disappear when that transaction rolls back. An intent left behind by a crash
is resolved by `resolve_intents()` after `INTENT_GRACE_S`, by asking the storage whether the
file exists.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial
from typing import Any

from django.core.files.storage import InvalidStorageError, storages
from django.db import transaction
from django.utils import timezone

from eventing.capture.detached import run_detached
from eventing.conf import settings
from eventing.dispatch.publish import enqueue_on_commit, within_horizon
from eventing.models import EventLog, EventStatus
from eventing.recording.emit import record_events
from eventing.store.trigger_cache import current_index
from triggers import types
from triggers.matching import matches_filter, matches_path
from triggers.registry import TriggerSpec

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
REMARK_LIMIT = 2000


def has_triggers(event_type: str, storage_alias: str) -> bool:
    """Whether any enabled trigger listens to `event_type` on this storage (a dict lookup)."""
    return bool(current_index().find(event_type, storage_alias))


def matches(trigger: TriggerSpec, payload: dict[str, Any]) -> bool:
    """Whether a file event passes the trigger's path pattern and filter."""
    return matches_path(trigger.path_pattern, payload.get("name") or "") and matches_filter(
        trigger.filter, payload
    )


class FileIntent:
    """The event rows of one storage operation, from `intent` to `staged` or `cancelled`."""

    def __init__(
        self,
        event_type: str,
        storage_alias: str,
        triggers: tuple[TriggerSpec, ...],
        payload: dict[str, Any],
    ) -> None:
        self.event_type = event_type
        self.storage_alias = storage_alias
        self.triggers = triggers
        self.payload = payload
        self.db = settings.DATABASE
        self.rows: list[EventLog] = []

    @classmethod
    def open(
        cls, event_type: str, storage_alias: str, payload: dict[str, Any]
    ) -> FileIntent | None:
        """Write the intent rows before the operation; None when no trigger wants the event."""
        triggers = tuple(
            t for t in current_index().find(event_type, storage_alias) if matches(t, payload)
        )
        if not triggers:
            return None
        intent = cls(event_type, storage_alias, triggers, payload)
        run_detached(intent.write_intents, intent.db, wait=True)
        return intent

    def succeeded(self, payload: dict[str, Any]) -> None:
        """The operation happened: stage the rows with the final payload and enqueue them."""
        run_detached(partial(self.write_staged, payload, timezone.now()), self.db, wait=False)

    def failed(self, exc: BaseException) -> None:
        """The operation raised: cancel the rows, keeping the error as their remark."""
        remark = f"The storage operation failed: {type(exc).__name__}: {exc}"[:REMARK_LIMIT]
        run_detached(partial(self.write_cancelled, remark, timezone.now()), self.db, wait=False)

    def write_intents(self) -> None:
        """Insert one `intent` row per trigger (committed before the operation starts)."""
        self.rows = record_events(
            self.event_type,
            [(trigger, self.payload) for trigger in self.triggers],
            source=self.storage_alias,
            due=timezone.now(),
            status=EventStatus.INTENT,
            using=self.db,
        )

    def write_staged(self, payload: dict[str, Any], now: dt.datetime) -> None:
        """intent → staged, enqueued on commit; rows the final name no longer matches cancel."""
        by_id = {trigger.id: trigger for trigger in self.triggers}
        staged, unmatched = [], []
        with transaction.atomic(using=self.db):
            for row in self.rows:
                trigger = by_id[row.trigger_id]
                if not matches(trigger, payload):
                    unmatched.append(row.id)
                    continue
                due = now + dt.timedelta(seconds=trigger.delay_s) if trigger.delay_s else now
                enqueued_at = now if within_horizon(due, now) else None
                # Conditional: a user (or the sweeper) may have resolved the intent already.
                updated = (
                    EventLog.objects.using(self.db)
                    .filter(id=row.id, status=EventStatus.INTENT)
                    .update(
                        status=EventStatus.STAGED,
                        payload=payload,
                        deliver_at=due,
                        enqueued_at=enqueued_at,
                    )
                )
                if updated:
                    row.status, row.payload = EventStatus.STAGED, payload
                    row.deliver_at, row.enqueued_at = due, enqueued_at
                    staged.append(row)
            if unmatched:
                cancel_intents(
                    unmatched,
                    self.db,
                    now,
                    f"The storage chose the name {payload.get('name')!r}, which this trigger's "
                    "path pattern or filter does not match.",
                )
            enqueue_on_commit(staged, using=self.db)

    def write_cancelled(self, remark: str, now: dt.datetime) -> None:
        """intent → cancelled with `remark`."""
        cancel_intents([row.id for row in self.rows], self.db, now, remark)


def cancel_intents(ids: list, db: str, now: dt.datetime, remark: str) -> int:
    """Cancel the rows among `ids` that are still intents."""
    if not ids:
        return 0
    return (
        EventLog.objects.using(db)
        .filter(id__in=ids, status=EventStatus.INTENT)
        .update(status=EventStatus.CANCELLED, processed_at=now, enqueued_at=None, remark=remark)
    )


def resolve_intents(now: dt.datetime | None = None) -> int:
    """Sweeper step: stage or cancel intents older than `INTENT_GRACE_S` by asking the storage.

    A FILE_CREATE happened if the file exists now; a FILE_DELETE if it does not. A storage
    that cannot answer (raises) is asked again on the next sweep.
    """
    now = now or timezone.now()
    db = settings.DATABASE
    cutoff = now - dt.timedelta(seconds=settings.INTENT_GRACE_S)
    rows = list(
        EventLog.objects.using(db)
        .filter(status=EventStatus.INTENT, created_at__lt=cutoff)
        .order_by("created_at")[:BATCH_SIZE]
    )
    answers: dict[tuple[str, str, str], tuple[bool | None, str]] = {}
    resolved = 0
    for row in rows:
        name = str((row.payload or {}).get("name") or "")
        key = (row.source, row.type, name)
        if key not in answers:
            answers[key] = operation_happened(row.source, row.type, name)
        happened, reason = answers[key]
        if happened is None:
            continue
        if happened:
            resolved += stage_resolved(row, db, now, reason)
        else:
            resolved += cancel_intents([row.id], db, now, reason)
    return resolved


def operation_happened(storage_alias: str, event_type: str, name: str) -> tuple[bool | None, str]:
    """Whether the storage shows the operation of an orphaned intent, with the reason in words.

    None: the storage could not answer now.
    """
    prefix = "Intent resolved by the sweeper after a crash"
    if event_type not in types.FILE_TYPES or not name:
        return False, f"{prefix}: not a file event with a name."
    try:
        exists = storages[storage_alias].exists(name)
    except InvalidStorageError:
        return False, f"{prefix}: storage {storage_alias!r} is not in settings.STORAGES."
    except Exception:  # noqa: BLE001 - a storage that cannot answer now is asked again later
        logger.warning(
            "Intent of %s on %s: the storage could not answer", name, storage_alias, exc_info=True
        )
        return None, ""
    if event_type == types.FILE_CREATE:
        if exists:
            return True, f"{prefix}: {name} exists, so it was written."
        return False, f"{prefix}: {name} does not exist, so it was not written."
    if exists:
        return False, f"{prefix}: {name} still exists, so it was not deleted."
    return True, f"{prefix}: {name} is gone, so it was deleted."


def stage_resolved(row: EventLog, db: str, now: dt.datetime, remark: str) -> int:
    """Stage one orphaned intent whose operation happened, and enqueue it on commit."""
    due = max(row.deliver_at, now)
    enqueued_at = now if within_horizon(due, now) else None
    with transaction.atomic(using=db):
        updated = (
            EventLog.objects.using(db)
            .filter(id=row.id, status=EventStatus.INTENT)
            .update(
                status=EventStatus.STAGED, deliver_at=due, enqueued_at=enqueued_at, remark=remark
            )
        )
        if updated:
            row.status, row.deliver_at, row.enqueued_at = EventStatus.STAGED, due, enqueued_at
            enqueue_on_commit([row], using=db)
    return updated
