"""The index of enabled triggers by type and source: what matching needs, detached from the ORM.

Every save of every model asks "does this model have triggers?", so the answer must be a dict
lookup. `load_index()` builds the index from the database; the per-process cache that keeps it
(with its TTL and invalidation) is eventing's, in `eventing/store/trigger_cache.py`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from .database import events_database
from .fields import SPEC_FIELDS
from .models import Trigger
from .types import CRON, DB_TYPES


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
    # DB types: whether the event data says who made the change.
    send_actor: bool = True
    # Payload path whose value orders this trigger's events; empty: unordered.
    ordering_key: str = ""

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> TriggerSpec:
        """The spec of a trigger read as `values(*SPEC_FIELDS)` (empty JSON read as empty)."""
        return cls(
            id=values["id"],
            name=values["name"],
            type=values["type"],
            source=values["source"],
            filter=values["filter"] or {},
            watch_fields=tuple(values["watch_fields"] or ()),
            payload_fields=tuple(values["payload_fields"] or ()),
            path_pattern=values["path_pattern"] or "",
            delay_s=values["delay_s"] or 0.0,
            send_actor=values["send_actor"],
            ordering_key=values["ordering_key"] or "",
        )

    @classmethod
    def from_trigger(cls, trigger: Trigger, **changes: Any) -> TriggerSpec:
        """The spec of a Trigger instance, with `changes` (e.g. no delay) applied."""
        spec = cls.from_values({name: getattr(trigger, name) for name in SPEC_FIELDS})
        return dataclasses.replace(spec, **changes) if changes else spec


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


def load_index() -> TriggerIndex:
    """Read the enabled triggers now (one query); raises DatabaseError before migrations."""
    by_key: dict[tuple[str, str], list[TriggerSpec]] = defaultdict(list)
    db_models: dict[str, set[str]] = defaultdict(set)
    db = events_database()
    # A savepoint keeps a failed read (table not migrated yet) from breaking the caller's
    # transaction on PostgreSQL.
    with transaction.atomic(using=db):
        rows = list(
            Trigger.objects.using(db)
            .filter(enabled=True)
            # CRON triggers are fired by the clock (eventing.capture.cron), never matched.
            .exclude(type=CRON)
            .values(*SPEC_FIELDS)
        )
    for row in rows:
        spec = TriggerSpec.from_values(row)
        by_key[(spec.type, spec.source)].append(spec)
        if spec.type in DB_TYPES:
            db_models[spec.source].add(spec.type)
    return TriggerIndex(
        by_key={key: tuple(specs) for key, specs in by_key.items()},
        db_models={label: frozenset(kinds) for label, kinds in db_models.items()},
    )
