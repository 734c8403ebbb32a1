"""Helpers of the Mission Control tests: event rows in a given state."""

from __future__ import annotations

import datetime as dt
import uuid

from django.utils import timezone

from eventing.models import EventLog, EventStatus
from triggers.models import Trigger


def make_event(
    trigger: Trigger,
    status: str = EventStatus.PROCESSED,
    *,
    created_ago_s: float = 60,
    **fields,
) -> EventLog:
    """An event row of `trigger` in `status`, created `created_ago_s` seconds ago."""
    now = timezone.now()
    created = now - dt.timedelta(seconds=created_ago_s)
    finished = status in (EventStatus.PROCESSED, EventStatus.FAILED, EventStatus.CANCELLED)
    values = {
        "batch_id": uuid.uuid4(),
        "type": trigger.type,
        "trigger": trigger,
        "trigger_name": trigger.name,
        "payload": {"n": 1},
        "status": status,
        "attempts": 1 if finished else 0,
        "deliver_at": created,
        "processed_at": created + dt.timedelta(seconds=1) if finished else None,
        **fields,
    }
    event = EventLog.objects.create(**values)
    # created_at is auto_now_add: set the wanted time afterwards.
    EventLog.objects.filter(pk=event.pk).update(created_at=created)
    event.created_at = created
    return event
