"""Fan-out to owners: the subscriptions of one owner that an event of a type reaches, and the
DB events the catalog publishes to owners under a public name."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError

from eventing.conf import settings
from eventing.models import PublicEventType, Subscription
from eventing.owners import OwnerKey, owner_model_label
from triggers import types
from triggers.matching import matches_filter
from triggers.registry import TriggerSpec


def owner_subscriptions(owner: OwnerKey, event_type: str) -> list[Subscription]:
    """The owner's enabled subscriptions to `event_type`, with their triggers (one query)."""
    rows = Subscription.objects.filter(enabled=True, **owner.filter()).select_related("trigger")
    return [s for s in rows if event_type in (s.types or []) and s.trigger.enabled]


def subscription_items(
    owner: OwnerKey | None, event_type: str, payload: Any
) -> list[tuple[TriggerSpec, Any]]:
    """(trigger spec, payload) for each of the owner's subscriptions this event passes; none
    without an owner, so no owner ever receives another's (or an ownerless) event."""
    if owner is None:
        return []
    return [
        (TriggerSpec.from_trigger(s.trigger), payload)
        for s in owner_subscriptions(owner, event_type)
        if matches_filter(s.filter, payload)
    ]


@dataclass(frozen=True)
class Publications:
    """The catalog's DB rules as this process last read them."""

    by_key: dict[tuple[str, str], tuple[PublicEventType, ...]]
    loaded_at: float

    def kinds(self, label: str) -> frozenset[str]:
        """The DB event types published from model `label`."""
        return frozenset(kind for kind, source in self.by_key if source == label)


_publications = Publications(by_key={}, loaded_at=float("-inf"))


def current_publications() -> Publications:
    """The DB rules of public types, reloaded when older than TRIGGER_CACHE_TTL_S."""
    global _publications
    if time.monotonic() - _publications.loaded_at < settings.TRIGGER_CACHE_TTL_S:
        return _publications
    started = time.monotonic()
    by_key: dict[tuple[str, str], list[PublicEventType]] = {}
    try:
        rules = list(PublicEventType.objects.filter(public=True).exclude(db_type=""))
    except DatabaseError:
        # Before migrations there is nothing to publish; try again on the next write.
        return _publications
    for rule in rules:
        by_key.setdefault((rule.db_type, rule.db_source), []).append(rule)
    _publications = Publications({k: tuple(v) for k, v in by_key.items()}, started)
    return _publications


def invalidate_publications(**kwargs) -> None:
    """Drop the DB rules so the next write reloads them (this process changed the catalog)."""
    global _publications
    _publications = Publications(by_key={}, loaded_at=float("-inf"))


def published_kinds(label: str) -> frozenset[str]:
    """DB event types of model `label` that the catalog publishes to owners."""
    return current_publications().kinds(label)


def published_events(
    db_type: str, label: str, old: dict | None, new: dict | None
) -> list[tuple[str, OwnerKey, dict]]:
    """(public name, owner, payload) for each catalog rule publishing this DB event: the
    payload holds the rule's `payload_fields` of the row only, never the whole row."""
    row = old if db_type == types.DB_DELETE else new
    if row is None:
        return []
    found = []
    for rule in current_publications().by_key.get((db_type, label), ()):
        owner_pk = row.get(rule.owner_path)
        if owner_pk is None or not rule.payload_fields:
            continue
        payload = {name: row[name] for name in rule.payload_fields if name in row}
        found.append((rule.name, OwnerKey(owner_model_label(), str(owner_pk)), payload))
    return found
