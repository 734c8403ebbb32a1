"""Ordered delivery, the worker's side: after a head finishes, its key's next row goes out."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DatabaseError

from eventing.dispatch.ordering import release_next
from eventing.models import FINAL_STATUSES

logger = logging.getLogger(__name__)

# Why a due staged row was not claimed: an earlier row of its key is unfinished.
BLOCKED = "waiting behind an earlier event of its ordering key"


def release_after(done: Iterable) -> int:
    """Send the next row of every key whose head these attempts (DeliveryResults whose outcome
    was applied) finished.

    Never fails the delivery that already happened: on a database error the sweeper sends the
    next rows within a sweep.
    """
    keys = {
        (result.event.trigger_id, result.event.ordering_key)
        for result in done
        if result.event.ordering_key is not None and result.outcome.status in FINAL_STATUSES
    }
    if not keys:
        return 0
    try:
        return release_next(keys)
    except DatabaseError:
        logger.warning("Could not send the next events of %d key(s)", len(keys), exc_info=True)
        return 0
