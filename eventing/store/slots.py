"""A capped trigger's slots, the rows' side: how many of its requests are under way or on
their way, and which staged rows wait without a message for a slot.

`max_in_flight` is enforced where rows are claimed (eventing.delivery.throttle). These
statements keep a capped trigger's burst out of the shared queue: only as many of its rows get
a message as it has free slots; the rest are held here, staged with no message (`enqueued_at`
empty) and IN_FLIGHT_REMARK, until a finished request or the sweeper releases them. A slot
counts only rows whose lease runs or whose message is out, so a worker killed mid-request
frees its slot when its lease expires.
"""

from __future__ import annotations

import datetime as dt

from django.db import connections, transaction
from django.db.models import Q

from eventing.conf import settings
from eventing.models import EventLog, EventStatus

IN_FLIGHT_REASON = "max_in_flight reached"
IN_FLIGHT_REMARK = f"Waiting: {IN_FLIGHT_REASON}"


def _rows():
    return EventLog.objects.using(settings.DATABASE)


def held_for_slot() -> Q:
    """Staged rows waiting, without a message, for a slot of their capped trigger."""
    return Q(status=EventStatus.STAGED, remark=IN_FLIGHT_REMARK, enqueued_at__isnull=True)


def taken_slots(trigger_id: int, now: dt.datetime, besides: list) -> int:
    """The trigger's slots in use: requests whose lease runs, and due rows with a message out
    (other than `besides`, the rows about to be sent)."""
    running = Q(status=EventStatus.PROCESSING, locked_until__gte=now)
    coming = Q(status=EventStatus.STAGED, enqueued_at__isnull=False, deliver_at__lte=now)
    return _rows().filter(running | coming, trigger_id=trigger_id).exclude(id__in=besides).count()


def hold_for_slot(event_ids: list) -> int:
    """Staged rows lose their message and wait for a slot (never lost: still staged)."""
    if not event_ids:
        return 0
    return (
        _rows()
        .filter(id__in=event_ids, status=EventStatus.STAGED)
        .update(enqueued_at=None, remark=IN_FLIGHT_REMARK)
    )


def triggers_holding(now: dt.datetime) -> list[int]:
    """Triggers with due rows waiting for a slot."""
    rows = _rows().filter(held_for_slot(), deliver_at__lte=now)
    return list(rows.values_list("trigger_id", flat=True).distinct())


def within_slots(items: list[tuple], capped: dict[int, int], now: dt.datetime) -> list[tuple]:
    """Of (id, deliver_at, trigger_id) items about to be sent, those that may go: all of an
    uncapped trigger, and of a trigger in `capped` (its max_in_flight by id) its rows due later
    plus as many due rows as it has free slots (earliest due first); the other due rows are
    held for a slot."""
    if not capped:
        return items
    ids = [pk for pk, _, _ in items]
    waiting: dict[int, list[tuple]] = {}
    for item in items:
        if item[2] in capped and item[1] <= now:
            waiting.setdefault(item[2], []).append(item)
    held = []
    for trigger_id, rows in waiting.items():
        free = max(0, capped[trigger_id] - taken_slots(trigger_id, now, ids))
        rows.sort(key=lambda item: item[1])
        held += [pk for pk, _, _ in rows[free:]]
    hold_for_slot(held)
    held = set(held)
    return [item for item in items if item[0] not in held]


def mark_held_sent(trigger_id: int, count: int, now: dt.datetime) -> list[tuple]:
    """Mark the `count` oldest due rows of a trigger waiting for a slot sent; (id, deliver_at,
    trigger_id) of each, to publish."""
    if count <= 0:
        return []
    db = settings.DATABASE
    with transaction.atomic(using=db):
        waiting = _rows().filter(held_for_slot(), trigger_id=trigger_id, deliver_at__lte=now)
        waiting = waiting.order_by("created_at")
        if connections[db].features.has_select_for_update_skip_locked:
            # Two sweepers at once take different rows.
            waiting = waiting.select_for_update(skip_locked=True)
        picked = list(waiting.values_list("id", "deliver_at")[:count])
        _rows().filter(id__in=[pk for pk, _ in picked]).update(enqueued_at=now)
    return [(pk, due, trigger_id) for pk, due in picked]
