"""The trigger index as eventing sees it: fresh within the TTL, delete receivers in sync."""

from __future__ import annotations

from triggers import registry

from .conf import settings

_synced = {"index": None}


def current_index() -> registry.TriggerIndex:
    """The enabled triggers, reloaded when older than `TRIGGER_CACHE_TTL_S`."""
    index = registry.get_index(settings.TRIGGER_CACHE_TTL_S)
    if index is not _synced["index"]:
        _synced["index"] = index
        # Imported here: receivers import this module.
        from .receivers import sync_delete_receivers

        sync_delete_receivers(index)
    return index


def refresh(**kwargs) -> None:
    """Signal handler: bring the index (and delete receivers) up to date."""
    current_index()
