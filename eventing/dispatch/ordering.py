"""Ordered delivery per key, the sending side: after a head finishes, its key's next row goes
out at once (the rows' side is eventing.store.ordering)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils import timezone

from eventing.dispatch.publish import publish_due
from eventing.store.ordering import RELEASE_CHUNK, mark_next
from eventing.store.transitions import unmark


def release_next(keys: Iterable[tuple[int, str]], now: dt.datetime | None = None) -> int:
    """Send the next row of each (trigger id, key) whose head just finished; how many were sent.

    Only a staged row due within the horizon is sent, and it is marked sent in the same
    statement that finds it; the rest wait for the sweeper like any row.
    """
    now = now or timezone.now()
    keys = sorted(set(keys))
    sent = 0
    for start in range(0, len(keys), RELEASE_CHUNK):
        due = mark_next(keys[start : start + RELEASE_CHUNK], now)
        failed = publish_due(due, now) if due else []
        unmark(failed)  # unmarked, the next sweep sends them
        sent += len(due) - len(failed)
    return sent
