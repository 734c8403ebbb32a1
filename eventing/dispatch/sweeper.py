"""The sweeper: finds every row the broker's fast path missed. Runs from beat every second."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from eventing.capture.intents import resolve_intents
from eventing.conf import settings
from eventing.delivery.dead_letters import emit_dead_letter
from eventing.dispatch.lag import recent_lag_s
from eventing.dispatch.publish import publish_due
from eventing.models import EventLog, EventStatus, Heartbeat

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
SWEEP_HEARTBEAT = "sweep"


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """One pass: release expired leases, send due and lost rows, resolve old file intents."""
    now = now or timezone.now()
    report = {
        "released": release_expired_leases(now),
        "enqueued": enqueue_due(now),
        "intents": resolve_intents(now),
    }
    record_heartbeat(SWEEP_HEARTBEAT, now, report)
    return report


def lookahead_s() -> float:
    """How far ahead rows are sent with an ETA: a few sweeps, within the horizon."""
    return min(settings.ETA_HORIZON_S, max(10.0, 5 * settings.SWEEP_INTERVAL_S))


def deliverable() -> Q:
    """Rows whose trigger may deliver now (paused and disabled triggers hold their rows)."""
    return Q(trigger__enabled=True, trigger__paused=False)


def release_expired_leases(now: dt.datetime) -> int:
    """Processing rows whose worker vanished go back to staged (failed after the last try)."""
    expired = EventLog.objects.filter(status=EventStatus.PROCESSING, locked_until__lt=now)
    spent = list(expired.filter(attempts__gte=F("trigger__retries") + 1).select_related("trigger"))
    for event in spent:
        fail_lost_last_attempt(event, now)
    return expired.update(
        status=EventStatus.STAGED,
        locked_until=None,
        enqueued_at=None,
        remark="The worker was lost mid-delivery (lease expired); delivering again.",
    ) + len(spent)


def fail_lost_last_attempt(event: EventLog, now: dt.datetime) -> None:
    """The last attempt's worker died: the event fails like any spent event."""
    with transaction.atomic(using=settings.DATABASE):
        failed = EventLog.objects.filter(
            id=event.id, status=EventStatus.PROCESSING, attempts=event.attempts
        ).update(
            status=EventStatus.FAILED,
            locked_until=None,
            processed_at=now,
            remark=f"The worker was lost during the last attempt ({event.attempts}).",
        )
        if failed and event.trigger is not None:
            emit_dead_letter(event, event.trigger)


def enqueue_due(now: dt.datetime) -> int:
    """Send rows due soon that have no message, and due rows whose message was lost."""
    grace = dt.timedelta(seconds=settings.LEASE_GRACE_S)
    never_sent = Q(
        enqueued_at__isnull=True, deliver_at__lte=now + dt.timedelta(seconds=lookahead_s())
    )
    # Behind a long queue a message is late, not lost: wait out (twice, as the queue may still
    # grow) the lag workers report before sending a copy. See eventing/dispatch/lag.py.
    queued = dt.timedelta(seconds=2 * recent_lag_s(now))
    lost = Q(enqueued_at__lt=now - grace - queued, deliver_at__lt=now - grace)
    db = settings.DATABASE
    with transaction.atomic(using=db):
        rows = (
            EventLog.objects.using(db)
            .filter(deliverable(), never_sent | lost, status=EventStatus.STAGED)
            .order_by("deliver_at")
        )
        if connections[db].features.has_select_for_update_skip_locked:
            # Two sweepers at once each take different rows.
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        due = list(rows.values_list("id", "deliver_at", "trigger_id")[:BATCH_SIZE])
        if due:
            EventLog.objects.using(db).filter(id__in=[pk for pk, _, _ in due]).update(
                enqueued_at=now
            )
    # Published after commit: a crash here leaves rows marked sent, found again as lost.
    failed = publish_due(due, now)
    if failed:
        EventLog.objects.using(db).filter(id__in=failed).update(enqueued_at=None)
    return len(due) - len(failed)


def record_heartbeat(name: str, now: dt.datetime, detail: dict) -> None:
    """Remember when a periodic job last ran (health checks read it)."""
    Heartbeat.objects.update_or_create(name=name, defaults={"at": now, "detail": detail})
