"""The per-process trigger cache: enabled triggers by type and source, and triggers by id.

Every save of every model asks "does this model have triggers?" (the index) and every delivery
needs its trigger's URL, secret, timeout and retry policy (by id): both are dict lookups in one
snapshot, so they always agree. The snapshot is reloaded when older than TRIGGER_CACHE_TTL_S
(edits made by other processes show within it) and dropped at once when this process changes a
trigger (`invalidate`, connected to Trigger saves and deletes and called after a 410 pause).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from django.db import DatabaseError

from eventing.conf import settings
from triggers.models import Trigger
from triggers.registry import EMPTY, TriggerIndex, load_index

logger = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """The triggers as this process last read them."""

    index: TriggerIndex
    loaded_at: float
    # Filled on first use of each id: a worker needs only the triggers of its messages.
    # None records a trigger that no longer exists.
    by_id: dict[int, Trigger | None] = field(default_factory=dict)


_lock = threading.Lock()
_snapshot = Snapshot(index=EMPTY, loaded_at=float("-inf"))


def current() -> Snapshot:
    """The snapshot, reloaded when older than TRIGGER_CACHE_TTL_S or invalidated."""
    global _snapshot
    snapshot = _snapshot
    if time.monotonic() - snapshot.loaded_at < settings.TRIGGER_CACHE_TTL_S:
        return snapshot
    with _lock:
        snapshot = _snapshot
        started = time.monotonic()
        if started - snapshot.loaded_at < settings.TRIGGER_CACHE_TTL_S:
            return snapshot
        try:
            index = load_index()
        except DatabaseError as exc:
            # Before migrations (or with the database away) there is nothing to match; try
            # again on the next call instead of failing the caller's write.
            logger.debug("Trigger index not loaded: %s", exc)
            return snapshot
        fresh = Snapshot(index=index, loaded_at=started)
        # A trigger changed here while we read keeps its invalidation: the next call reloads.
        if _snapshot is snapshot:
            _snapshot = fresh
        return fresh


def current_index() -> TriggerIndex:
    """The enabled triggers by type and source."""
    return current().index


def get_trigger(trigger_id: int | None) -> Trigger | None:
    """The trigger with this id (None if deleted), from the same snapshot as the index."""
    if trigger_id is None:
        return None
    snapshot = current()
    try:
        return snapshot.by_id[trigger_id]
    except KeyError:
        pass
    # With its retired secrets, from the same read: a rotation's new and old secret both sign.
    trigger = Trigger.objects.prefetch_related("retired_secrets").filter(pk=trigger_id).first()
    # Into the snapshot read above: if it was invalidated meanwhile, the row goes with it.
    snapshot.by_id[trigger_id] = trigger
    return trigger


def invalidate(**kwargs) -> None:
    """Drop the snapshot so the next lookup reloads (this process changed a trigger)."""
    global _snapshot
    # The old index stays as the answer while the database cannot be read.
    _snapshot = Snapshot(index=_snapshot.index, loaded_at=float("-inf"))


def refresh(**kwargs) -> None:
    """Signal handler: bring the snapshot up to date at the start of a request or task."""
    current()
