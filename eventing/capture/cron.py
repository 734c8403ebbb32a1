"""CRON triggers: each tick of a trigger's cron expression becomes one event, exactly once.

Beat runs `fire_due_ticks()` every few seconds, possibly from several beat processes at once
and across restarts. A tick is claimed by moving the trigger's `cron_last_tick` forward with a
conditional UPDATE (one process wins; the others see the moved mark and do nothing), and its
event carries the idempotency key `cron:<tick>`, whose unique constraint refuses a second row
for the same (trigger, tick) even if the mark were ever moved back.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from eventing.conf import settings
from eventing.models import EventLog
from eventing.recording.emit import record_events
from triggers import schedule, types
from triggers.models import Trigger
from triggers.registry import TriggerSpec

logger = logging.getLogger(__name__)

# The `source` of cron events.
SOURCE = "cron"


@dataclass
class TickResult:
    """What one pass did: ticks fired, skipped as missed, taken by another process, failed."""

    fired: int = 0
    skipped: int = 0
    taken: int = 0
    failed: int = 0


def latest_tick(trigger: Trigger, now: dt.datetime) -> dt.datetime | None:
    """The last time at or before `now` the expression names (in UTC); None within no reach."""
    return schedule.run_before(trigger.cron_expression, trigger.cron_timezone, now)


def next_ticks(trigger: Trigger, count: int = 5, now: dt.datetime | None = None) -> list:
    """The next `count` times the trigger fires after `now` (in its timezone); [] if none."""
    try:
        return upcoming(trigger, count, now)
    except schedule.ScheduleError:
        return []


def upcoming(trigger: Trigger, count: int = 5, now: dt.datetime | None = None) -> list:
    """The next `count` ticks after `now`; ScheduleError says why a stored schedule has none."""
    if trigger.type != types.CRON:
        return []
    return schedule.runs_after(
        trigger.cron_expression or "", trigger.cron_timezone, now or timezone.now(), count
    )


def tick_data(trigger: Trigger, tick: dt.datetime) -> dict:
    """The `data` of a tick's event: the trigger's name, the tick's time and its payload."""
    return {
        "name": trigger.name,
        "scheduled_time": tick.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "payload": trigger.cron_payload,
    }


def idempotency_key(tick: dt.datetime) -> str:
    """The key that makes a tick's event unique per trigger."""
    return f"cron:{tick.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def fire_due_ticks(now: dt.datetime | None = None) -> TickResult:
    """Record one event for the latest due tick of every enabled CRON trigger, once.

    Ticks missed while beat was down collapse into one: the latest fires late, unless the
    trigger skips missed ticks. Ticks before the trigger existed never fire.
    """
    now = now or timezone.now()
    result = TickResult()
    db = settings.DATABASE
    for trigger in Trigger.objects.using(db).filter(type=types.CRON, enabled=True):
        # One trigger's schedule (a bad one stored before it was refused on save, a database
        # error on its row) must never stop the others' ticks: log it and go on.
        try:
            fire_trigger(trigger, now, db, result)
        except Exception:
            result.failed += 1
            logger.exception("CRON trigger %r: its tick could not be handled", trigger.name)
    if result.fired or result.skipped:
        # Checks that found nothing stay silent (Celery's own lines about them are DEBUG with
        # eventing.ops.logs.QuietSweepsFilter): a line means a tick fired or was skipped.
        logger.info("cron fired=%d skipped=%d", result.fired, result.skipped)
    return result


def fire_trigger(trigger: Trigger, now: dt.datetime, db: str, result: TickResult) -> None:
    """Handle one trigger's latest due tick, counting what happened in `result`."""
    tick = latest_tick(trigger, now)
    if tick is None or (trigger.cron_last_tick is not None and tick <= trigger.cron_last_tick):
        return
    with transaction.atomic(using=db):
        if not claim(trigger, tick, db):
            result.taken += 1
            return
        if tick < trigger.created_at:
            return
        missed = (now - tick).total_seconds() > settings.CRON_MISSED_AFTER_S
        if missed and trigger.cron_skip_missed:
            result.skipped += 1
            return
        if record_tick(trigger, tick, db):
            result.fired += 1
        else:
            result.taken += 1


def claim(trigger: Trigger, tick: dt.datetime, db: str) -> bool:
    """Move the trigger's mark to `tick` if no process has: True for the one that does."""
    moved = (
        Trigger.objects.using(db)
        .filter(pk=trigger.pk)
        .filter(Q(cron_last_tick__isnull=True) | Q(cron_last_tick__lt=tick))
        .update(cron_last_tick=tick)
    )
    return moved == 1


def record_tick(trigger: Trigger, tick: dt.datetime, db: str) -> list[EventLog]:
    """The tick's event, due now; nothing if one was already recorded for this tick."""
    spec = TriggerSpec.from_trigger(trigger)
    try:
        with transaction.atomic(using=db):
            return record_events(
                types.CRON,
                [(spec, tick_data(trigger, tick))],
                source=SOURCE,
                due=timezone.now(),
                using=db,
                idempotency_key=idempotency_key(tick),
            )
    except IntegrityError:
        return []
