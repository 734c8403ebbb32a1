"""Ordered delivery as a delivery policy: a row held by its key is parked (its remark names
what holds it), and after a head finishes its key's next row goes out."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DatabaseError

from eventing.delivery.policy import CLAIMED_ELSEWHERE, DeliveryResult, Policy, Run
from eventing.dispatch.ordering import release_next
from eventing.models import FINAL_STATUSES, EventLog
from eventing.store.ordering import park

logger = logging.getLogger(__name__)

# Why a due staged row was not claimed: an earlier row of its key is unfinished.
BLOCKED = "waiting behind an earlier event of its ordering key"


class OrderingPolicy(Policy):
    """Per-key order, held in the claim statement (eventing.store.predicates)."""

    name = "ordering"

    def not_claimed(self, run: Run, results: dict) -> None:
        unclaimed = [pk for pk, result in results.items() if result.skipped == CLAIMED_ELSEWHERE]
        parked = park(unclaimed, run.now)
        for pk in unclaimed:
            if EventLog._meta.pk.to_python(pk) in parked:
                results[pk] = DeliveryResult(skipped=BLOCKED)

    def after_finish(self, run: Run, done: list[DeliveryResult], applied: set) -> None:
        release_after(result for result in done if result.event.id in applied)


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
