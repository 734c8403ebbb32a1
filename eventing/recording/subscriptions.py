"""Fan-out to owners: the subscriptions of one owner that an event of a type reaches."""

from __future__ import annotations

from typing import Any

from eventing.models import Subscription
from eventing.owners import OwnerKey
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
