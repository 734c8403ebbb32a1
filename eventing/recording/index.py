"""The trigger index as eventing sees it: loaded on first need, fresh within the TTL."""

from __future__ import annotations

from eventing.conf import settings
from triggers import registry


def current_index() -> registry.TriggerIndex:
    """The enabled triggers, reloaded when older than `TRIGGER_CACHE_TTL_S`."""
    return registry.get_index(settings.TRIGGER_CACHE_TTL_S)


def refresh(**kwargs) -> None:
    """Signal handler: bring the index up to date at the start of a request or task."""
    current_index()
