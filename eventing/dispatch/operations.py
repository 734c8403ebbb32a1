"""What users do to events: cancel, redeliver, replay a time window, reschedule. The admin,
the API and the commands call these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from eventing.conf import settings
from eventing.dispatch.ordering import release_next
from eventing.dispatch.publish import enqueue_on_commit, within_horizon
from eventing.models import FINAL_STATUSES, EventLog, EventStatus
from eventing.store import transitions
from eventing.store.transitions import CANCELLABLE

# Events a replay stages per transaction: each batch is published on its own commit, so the
# broker and the workers take a large window a batch at a time.
REPLAY_BATCH_SIZE = 500


def cancel_events(event_ids: Iterable, *, reason: str = "Cancelled by a user") -> int:
    """Cancel the staged (or intent) events among `event_ids`; returns how many. The next
    event of a cancelled ordered head is sent once this commits."""
    event_ids = list(event_ids)
    cancellable = EventLog.objects.filter(id__in=event_ids, status__in=CANCELLABLE)
    keys = set(
        cancellable.filter(ordering_key__isnull=False).values_list("trigger_id", "ordering_key")
    )
    cancelled = transitions.cancel(event_ids, reason, timezone.now())
    if keys:
        # Robust: the cancel stands if this fails; the sweeper sends the next rows instead.
        transaction.on_commit(lambda: release_next(keys), using=settings.DATABASE, robust=True)
    return cancelled


def redeliver_events(event_ids: Iterable) -> int:
    """Stage finished events again with a fresh retry budget; old invocations are kept."""
    db = settings.DATABASE
    now = timezone.now()
    with transaction.atomic(using=db):
        rows = list(
            EventLog.objects.using(db)
            .select_for_update()
            .filter(id__in=list(event_ids), status__in=FINAL_STATUSES)
        )
        if not rows:
            return 0
        transitions.redeliver([row.id for row in rows], "Redelivery requested", now)
        for row in rows:
            row.deliver_at, row.enqueued_at = now, now
        enqueue_on_commit(rows, using=db)
    return len(rows)


@dataclass(frozen=True)
class Replay:
    """A window of finished events to deliver again: created in [since, until), in `statuses`,
    of the named triggers and/or types (none named: every trigger)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    statuses: tuple[str, ...] = (EventStatus.FAILED,)
    triggers: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def events(self) -> QuerySet[EventLog]:
        """The events in the window (whose trigger still exists)."""
        wrong = sorted(set(self.statuses) - {str(status) for status in FINAL_STATUSES})
        if wrong:
            raise ValidationError({"status": f"{', '.join(wrong)} cannot be redelivered."})
        if self.since and self.until and self.since >= self.until:
            raise ValidationError({"until": "The window must end after it starts."})
        events = EventLog.objects.filter(status__in=self.statuses, trigger__isnull=False)
        if self.triggers:
            events = events.filter(trigger__name__in=self.triggers)
        if self.types:
            events = events.filter(type__in=self.types)
        if self.since:
            events = events.filter(created_at__gte=self.since)
        if self.until:
            events = events.filter(created_at__lt=self.until)
        return events

    def count_by_trigger(self) -> dict[str, int]:
        """The dry run: how many events each trigger would get again."""
        rows = (
            self.events()
            .values_list("trigger_name")
            .annotate(n=Count("id"))
            .order_by("trigger_name")
        )
        return dict(rows)


def replay(
    window: Replay,
    *,
    batch_size: int = REPLAY_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Redeliver every event of the window, a batch per transaction (as redeliver_events does
    one event: fresh retry budget, earlier invocations kept); how many were staged."""
    done = 0
    for ids in batches(window.events(), batch_size):
        done += redeliver_events(ids)
        if progress:
            progress(done)
    return done


def batches(events: QuerySet[EventLog], size: int) -> Iterator[list]:
    """Ids of `events` in (created_at, id) order, `size` at a time, each row at most once.

    Keyset paging: a redelivered event that fails again while the replay runs is not picked up
    a second time.
    """
    ordered = events.order_by("created_at", "id")
    after: tuple | None = None
    while True:
        page = ordered
        if after is not None:
            page = page.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], id__gt=after[1]))
        rows = list(page.values_list("created_at", "id")[:size])
        if not rows:
            return
        yield [pk for _, pk in rows]
        after = rows[-1]


def reschedule_event(event_id, deliver_at: dt.datetime) -> EventLog:
    """Move a staged event's due time; refuses events that are not staged."""
    if timezone.is_naive(deliver_at):
        raise ValidationError({"deliver_at": "Give a time with a timezone."})
    db = settings.DATABASE
    now = timezone.now()
    enqueued_at = now if within_horizon(deliver_at, now) else None
    with transaction.atomic(using=db):
        if not transitions.reschedule(event_id, deliver_at, enqueued_at):
            raise ValidationError({"deliver_at": "Only staged events can be rescheduled."})
        event = EventLog.objects.using(db).get(id=event_id)
        if enqueued_at is not None:
            # The old message (if any) finds the row not yet due and steps aside.
            enqueue_on_commit([event], using=db)
    return event
