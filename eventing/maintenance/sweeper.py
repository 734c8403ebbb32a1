"""The sweeper: finds every row the broker's fast path missed. Runs from beat every second."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from eventing.capture.database import expand_all
from eventing.capture.intents import resolve_intents
from eventing.conf import settings
from eventing.delivery.dead_letters import emit_dead_letter
from eventing.delivery.throttle import send_held_rows
from eventing.dispatch.lag import recent_lag_s
from eventing.dispatch.sending import deliverable, send_rows
from eventing.models import EventLog, EventStatus, Heartbeat
from eventing.store import transitions
from eventing.store.predicates import lost_lease, not_blocked
from eventing.store.slots import held_for_slot

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
SWEEP_HEARTBEAT = "sweep"


def sweep(now: dt.datetime | None = None) -> dict[str, int]:
    """One pass: release lost leases, expand captures, send due and lost rows, resolve intents."""
    now = now or timezone.now()
    released = release_expired_leases(now)
    expanded = expand_all().captures  # first: the rows they become are sent in this pass
    report = {
        "released": released,
        "enqueued": enqueue_due(now) + send_held_rows(now),
        "intents": resolve_intents(now),
        "expanded": expanded,
    }
    record_heartbeat(SWEEP_HEARTBEAT, now, report)
    if any(report.values()):
        # Idle sweeps stay silent (Celery's own lines about them are DEBUG with
        # eventing.ops.logs.QuietSweepsFilter): a line means the sweep changed something.
        logger.info(
            "sweep released=%d enqueued=%d intents=%d expanded=%d",
            report["released"],
            report["enqueued"],
            report["intents"],
            report["expanded"],
        )
    return report


def lookahead_s() -> float:
    """How far ahead rows are sent with an ETA: a few sweeps, within the horizon."""
    return min(settings.ETA_HORIZON_S, max(10.0, 5 * settings.SWEEP_INTERVAL_S))


# The rules of one pass, shared by the sweep and by `eventing_sweep --dry-run` (`pending`).


def expired_leases(now: dt.datetime) -> QuerySet[EventLog]:
    """Processing rows whose lease ran out: their worker vanished."""
    return EventLog.objects.using(settings.DATABASE).filter(lost_lease(now))


def spent() -> Q:
    """Rows whose last attempt was made: a lost one fails instead of going back to staged."""
    return Q(attempts__gte=F("trigger__retries") + 1)


def sent_soon(now: dt.datetime) -> Q:
    """Rows due within the lookahead: without a message, the sweep sends them one."""
    return Q(deliver_at__lte=now + dt.timedelta(seconds=lookahead_s()))


def message_lost(now: dt.datetime) -> Q:
    """Rows sent, due, and still not taken long after: their message is taken for lost."""
    grace = dt.timedelta(seconds=settings.LEASE_GRACE_S)
    # Behind a long queue a message is late, not lost: wait out (twice, as the queue may still
    # grow) the lag workers report before sending a copy. See eventing/dispatch/lag.py.
    queued = dt.timedelta(seconds=2 * recent_lag_s(now))
    return Q(enqueued_at__lt=now - grace - queued, deliver_at__lt=now - grace)


def to_send(now: dt.datetime) -> QuerySet[EventLog]:
    """Staged rows the sweep sends at `now`: due soon without a message, or with a lost one;
    an ordered row only once it is first of its key. Rows waiting for a slot of their capped
    trigger are sent by send_held_rows, only into free slots.

    Both kinds are due within the lookahead, said once more on its own: the range on the
    partial index of staged rows by due time then stops at the lookahead, so a pass costs what
    is due, not every row scheduled ahead (the OR alone left the planner walking them all).
    """
    never_sent = Q(enqueued_at__isnull=True)
    return EventLog.objects.using(settings.DATABASE).filter(
        sent_soon(now),
        deliverable(),
        never_sent | message_lost(now),
        not_blocked(),
        ~held_for_slot(),
        status=EventStatus.STAGED,
    )


def held(now: dt.datetime) -> QuerySet[EventLog]:
    """Due staged rows that paused or disabled triggers hold (sent when they resume)."""
    return EventLog.objects.using(settings.DATABASE).filter(
        ~deliverable(), status=EventStatus.STAGED, deliver_at__lte=now
    )


def pending(now: dt.datetime) -> dict[str, int]:
    """What a sweep at `now` would release and send, changing nothing (for --dry-run)."""
    expired = expired_leases(now)
    # Released rows are staged without a message, so the same pass sends those due soon.
    resent = expired.filter(deliverable(), ~spent(), sent_soon(now)).count()
    return {
        "expired_leases": expired.count(),
        "to_enqueue": min(BATCH_SIZE, to_send(now).count() + resent),
        "held_by_paused_triggers": held(now).count(),
    }


def release_expired_leases(now: dt.datetime) -> int:
    """Processing rows whose worker vanished go back to staged (failed after the last try)."""
    expired = expired_leases(now)
    spent_rows = list(expired.filter(spent()).select_related("trigger"))
    for event in spent_rows:
        fail_lost_last_attempt(event, now)
    released = transitions.release_lost_leases(
        now, "The worker was lost mid-delivery (lease expired); delivering again."
    )
    return released + len(spent_rows)


def fail_lost_last_attempt(event: EventLog, now: dt.datetime) -> None:
    """The last attempt's worker died: the event fails like any spent event."""
    with transaction.atomic(using=settings.DATABASE):
        remark = f"The worker was lost during the last attempt ({event.attempts})."
        failed = transitions.fail_lost(event.id, event.attempts, remark, now)
        if failed and event.trigger is not None:
            emit_dead_letter(event, event.trigger)


def enqueue_due(now: dt.datetime) -> int:
    """Send rows due soon that have no message, and due rows whose message was lost."""
    return send_rows(to_send(now), now, limit=BATCH_SIZE)


def record_heartbeat(name: str, now: dt.datetime, detail: dict) -> None:
    """Remember when a periodic job last ran (health checks read it)."""
    Heartbeat.objects.update_or_create(name=name, defaults={"at": now, "detail": detail})
