"""A per-process index of enabled triggers, reloaded at most every second.

Every save of every model asks "does this model have triggers?", so the answer must be a dict
lookup. Each process keeps a snapshot of the enabled triggers and reloads it when it is older
than the TTL (other processes' edits show within about a second) or at once when this process
changed a trigger.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from django.db.models.signals import post_delete, post_save

from .database import events_database

logger = logging.getLogger(__name__)

DEFAULT_TTL_S = 1.0


@dataclass(frozen=True)
class TriggerSpec:
    """What matching needs of a trigger, detached from the ORM."""

    id: int
    name: str
    type: str
    source: str
    filter: dict
    watch_fields: tuple[str, ...]
    payload_fields: tuple[str, ...]
    path_pattern: str
    delay_s: float


@dataclass(frozen=True)
class TriggerIndex:
    """Enabled triggers keyed by (type, source)."""

    by_key: dict[tuple[str, str], tuple[TriggerSpec, ...]]
    # model label -> the DB types it has triggers for; the fast path of every save.
    db_models: dict[str, frozenset[str]]

    def find(self, event_type: str, source: str = "") -> tuple[TriggerSpec, ...]:
        """Triggers for events of `event_type` from `source`."""
        return self.by_key.get((event_type, source), ())


EMPTY = TriggerIndex(by_key={}, db_models={})

_lock = threading.Lock()
_state = {"index": EMPTY, "loaded_at": float("-inf")}


def _load() -> TriggerIndex:
    from .models import Trigger
    from .types import DB_TYPES

    by_key: dict[tuple[str, str], list[TriggerSpec]] = defaultdict(list)
    db_models: dict[str, set[str]] = defaultdict(set)
    db = events_database()
    # A savepoint keeps a failed read (table not migrated yet) from breaking the caller's
    # transaction on PostgreSQL.
    with transaction.atomic(using=db):
        rows = list(
            Trigger.objects.using(db)
            .filter(enabled=True)
            .values_list(
                "id",
                "name",
                "type",
                "source",
                "filter",
                "watch_fields",
                "payload_fields",
                "path_pattern",
                "delay_s",
            )
        )
    for row in rows:
        spec = TriggerSpec(
            id=row[0],
            name=row[1],
            type=row[2],
            source=row[3],
            filter=row[4] or {},
            watch_fields=tuple(row[5] or ()),
            payload_fields=tuple(row[6] or ()),
            path_pattern=row[7] or "",
            delay_s=row[8] or 0.0,
        )
        by_key[(spec.type, spec.source)].append(spec)
        if spec.type in DB_TYPES:
            db_models[spec.source].add(spec.type)
    return TriggerIndex(
        by_key={key: tuple(specs) for key, specs in by_key.items()},
        db_models={label: frozenset(kinds) for label, kinds in db_models.items()},
    )


def get_index(ttl_s: float = DEFAULT_TTL_S) -> TriggerIndex:
    """The current index, reloaded if older than `ttl_s` seconds."""
    now = time.monotonic()
    if now - _state["loaded_at"] < ttl_s:
        return _state["index"]
    with _lock:
        if now - _state["loaded_at"] < ttl_s:
            return _state["index"]
        try:
            index = _load()
        except DatabaseError as exc:
            # Before migrations (or with the database away) there is nothing to match; try
            # again on the next call instead of failing the caller's write.
            logger.debug("Trigger index not loaded: %s", exc)
            return _state["index"]
        _state["index"] = index
        _state["loaded_at"] = time.monotonic()
        return index


def invalidate(**kwargs) -> None:
    """Force the next `get_index()` to reload (connected to Trigger saves and deletes)."""
    _state["loaded_at"] = float("-inf")


def connect_invalidation() -> None:
    """Reload this process's index as soon as it changes a trigger itself."""
    from .models import Trigger

    post_save.connect(invalidate, sender=Trigger, dispatch_uid="triggers.invalidate.save")
    post_delete.connect(invalidate, sender=Trigger, dispatch_uid="triggers.invalidate.delete")
