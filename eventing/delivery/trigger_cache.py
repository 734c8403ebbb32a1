"""Triggers as workers see them: loaded by id, kept for TRIGGER_CACHE_TTL_S.

A delivery needs its trigger's URL, secret, timeout and retry policy. Reading them once a second
per process instead of once per event removes a query from every delivery; edits made elsewhere
show within the TTL, as the contract allows.
"""

from __future__ import annotations

import threading
import time

from eventing.conf import settings
from triggers.models import Trigger

_lock = threading.Lock()
_cache: dict[int, tuple[float, Trigger | None]] = {}


def get_trigger(trigger_id: int | None) -> Trigger | None:
    """The trigger with this id (None if deleted), at most TRIGGER_CACHE_TTL_S old."""
    if trigger_id is None:
        return None
    now = time.monotonic()
    hit = _cache.get(trigger_id)
    if hit is not None and now - hit[0] < settings.TRIGGER_CACHE_TTL_S:
        return hit[1]
    trigger = Trigger.objects.filter(pk=trigger_id).first()
    with _lock:
        _cache[trigger_id] = (time.monotonic(), trigger)
    return trigger


def forget(trigger_id: int | None = None, **kwargs) -> None:
    """Drop one cached trigger (or all); connected to this process's own trigger changes."""
    with _lock:
        if trigger_id is None:
            _cache.clear()
        else:
            _cache.pop(trigger_id, None)


def forget_instance(sender, instance, **kwargs) -> None:
    """Signal receiver: a trigger was saved or deleted in this process."""
    forget(instance.pk)
