"""Sending rows to the broker: the fast path; the sweeper covers every message lost here.

After a commit, messages go to a per-process publisher thread, so a save() never waits on the
broker. If the process dies with messages still queued here, their rows are already marked
sent and the sweeper sends them again after LEASE_GRACE_S.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Iterable

from celery import current_app
from django.db import close_old_connections, transaction
from django.utils import timezone

from eventing.conf import settings
from eventing.models import EventLog
from eventing.ops.metrics import count_emitted
from eventing.runtime import PerProcess
from eventing.store.predicates import queue_position
from eventing.store.slots import within_slots
from eventing.store.transitions import unmark
from eventing.store.trigger_cache import get_trigger

logger = logging.getLogger(__name__)

# Tasks are sent by name: eventing.tasks (the worker's entry point) imports the whole pipeline.
DELIVER_TASK = "eventing.deliver"
DELIVER_BATCH_TASK = "eventing.deliver_batch"
# Don't let a dead broker stall the caller: one quick retry, then the sweeper.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2}
# After a failed publish this process skips the broker for this long. Without it, during an
# outage every row of every commit waited out the retry policy (200 rows took 25 s); skipped
# rows keep enqueued_at empty and the sweeper sends them once the broker is back.
BROKER_BACKOFF_S = 1.0
# The publisher thread takes at most this many commits' rows per round.
MAX_COMMITS_PER_ROUND = 1000
# Handed to the publisher thread by stop(): it publishes what it took, then ends.
STOP = None
# Who holds this process's rows instead of the broker (eventing.testing): while any handler is
# here, recorded rows go to each of them at once and no message reaches the broker.
_holders: list = []


@contextlib.contextmanager
def held_by(handler):
    """While the block runs, rows to be sent are handed to `handler(rows, using)` when recorded
    (not on commit) and nothing is published: a test process needs no broker."""
    _holders.append(handler)
    try:
        yield handler
    finally:
        _holders.remove(handler)


def within_horizon(deliver_at: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Whether an event due at `deliver_at` gets an ETA message now (else the sweeper waits)."""
    now = now or timezone.now()
    return (deliver_at - now).total_seconds() <= settings.ETA_HORIZON_S


def publish(
    event_id, deliver_at: dt.datetime, now: dt.datetime | None = None, trigger_id: int | None = None
) -> bool:
    """Send one deliver message, with an ETA when the event is due later; False if it failed."""
    now = now or timezone.now()
    eta = deliver_at if deliver_at > now else None
    return send_message(DELIVER_TASK, (str(event_id), trigger_id), eta, f"event {event_id}")


def publish_batch(event_ids: list, trigger_id: int | None, eta: dt.datetime | None) -> bool:
    """Send one message for several events of one trigger due at the same time."""
    ids = [str(pk) for pk in event_ids]
    return send_message(
        DELIVER_BATCH_TASK, (ids, trigger_id), eta, f"{len(ids)} events ({ids[0]}…)"
    )


class BrokerBackoff:
    """Until when (time.monotonic()) this process skips the broker after a failed publish."""

    def __init__(self) -> None:
        self.until = 0.0


broker_backoff = PerProcess(BrokerBackoff)


def send_message(task_name: str, args: tuple, eta: dt.datetime | None, what: str) -> bool:
    """Send a task by name with the quick retry policy and the broker back-off; False if failed."""
    backoff = broker_backoff()
    if _holders or time.monotonic() < backoff.until:
        return False
    try:
        current_app.signature(task_name, args=args).apply_async(
            eta=eta, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception as exc:  # noqa: BLE001 - any broker failure: the rows stay for the sweeper
        backoff.until = time.monotonic() + BROKER_BACKOFF_S
        logger.warning(
            "Could not publish %s (%s); the sweeper will send it when the broker is back",
            what,
            exc,
        )
        return False
    return True


def publish_due(items: Iterable[tuple], now: dt.datetime) -> list:
    """Send messages for (event id, deliver_at, trigger id) items; the ids that failed.

    Rows of one trigger due at the same moment (all of a commit's rows due now, typically)
    share messages of up to DELIVERY_BATCH_SIZE events, so a burst costs the broker and the
    workers one message per batch instead of one per event.
    """
    items = list(items)
    # A capped trigger's burst gets only as many messages as it has free slots; the rest wait
    # in the table (eventing.store.slots) instead of filling the queue every trigger shares.
    items = within_slots(items, slot_caps(items), now)
    groups: dict[tuple, list] = {}
    for event_id, deliver_at, trigger_id in items:
        eta = deliver_at if deliver_at > now else None
        groups.setdefault((trigger_id, eta), []).append((event_id, deliver_at))
    size = settings.DELIVERY_BATCH_SIZE
    failed = []
    for (trigger_id, eta), group in groups.items():
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            if len(chunk) == 1:
                event_id, deliver_at = chunk[0]
                sent = publish(event_id, deliver_at, now, trigger_id=trigger_id)
            else:
                sent = publish_batch([pk for pk, _ in chunk], trigger_id, eta)
            if not sent:
                failed += [pk for pk, _ in chunk]
    return failed


def slot_caps(items: list[tuple]) -> dict[int, int]:
    """The max_in_flight of the items' triggers that have one (from the trigger cache)."""
    caps = {}
    for trigger_id in {trigger_id for _, _, trigger_id in items}:
        trigger = get_trigger(trigger_id)
        if trigger is not None and trigger.max_in_flight:
            caps[trigger_id] = trigger.max_in_flight
    return caps


def publish_rows(rows: Iterable[EventLog], *, using: str) -> int:
    """Publish the rows that are within the horizon; unmark the ones that failed.

    Of several rows of one ordering key only the first recorded gets a message: the others
    wait behind it anyway, and it sends the next when it finishes (see store/ordering.py;
    if that is lost, the sweeper sends them as lost messages)."""
    failed = publish_due(
        (
            (row.id, row.deliver_at, row.trigger_id)
            for row in first_of_each_key(rows)
            if row.enqueued_at is not None
        ),
        timezone.now(),
    )
    # Clearing enqueued_at lets the very next sweep send them, not one lease grace later.
    unmark(failed)
    return len(failed)


def first_of_each_key(rows: Iterable[EventLog]) -> list[EventLog]:
    """The rows without an ordering key, and the first of each (trigger, key) in the key's
    queue (eventing.store.predicates.queue_position)."""
    rows = list(rows)
    first: dict[tuple, EventLog] = {}
    for row in rows:
        if row.ordering_key is not None:
            key = (row.trigger_id, row.ordering_key)
            if key not in first or queue_position(row) < queue_position(first[key]):
                first[key] = row
    if not first:
        return rows
    firsts = {row.id for row in first.values()}
    return [row for row in rows if row.ordering_key is None or row.id in firsts]


class Publisher:
    """A daemon thread that publishes committed rows in the order they were handed over."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.pending = 0
        self.last_handover = 0.0
        self.idle = threading.Condition()
        self.thread = threading.Thread(target=self.run, name="eventing-publisher", daemon=True)
        self.thread.start()

    def submit(self, rows: list[EventLog], using: str) -> None:
        with self.idle:
            self.pending += 1
        self.queue.put((rows, using))

    def run(self) -> None:
        stopping = False
        while not stopping:
            handed = self.take_all()
            stopping = handed[-1] is STOP
            if stopping:
                handed.pop()
            try:
                # Everything handed over meanwhile goes out together: under load, commits
                # share batch messages instead of sending one message each.
                by_database: dict[str, list[EventLog]] = {}
                for rows, using in handed:
                    by_database.setdefault(using, []).extend(rows)
                for using, rows in by_database.items():
                    publish_rows(rows, using=using)
            except Exception:  # noqa: BLE001 - the thread must survive; the sweeper resends
                logger.exception("Publishing %d commit(s) failed", len(handed))
            finally:
                close_old_connections()
                with self.idle:
                    self.pending -= len(handed)
                    self.idle.notify_all()

    def take_all(self) -> list[tuple[list[EventLog], str] | None]:
        """Wait for the next hand-over, then take every other one already waiting (up to STOP).

        Under load (this hand-over came within PUBLISH_LINGER_MS of the last) it also waits
        that long for more, so back-to-back commits share batch messages: a message costs the
        publisher, the broker and a worker far more than an event in it. An isolated commit
        is published at once.
        """
        handed = [self.queue.get()]
        now = time.monotonic()
        linger = settings.PUBLISH_LINGER_MS / 1000
        busy = now - self.last_handover < linger
        self.last_handover = now
        deadline = now + linger if busy else now
        while handed[-1] is not STOP and len(handed) < MAX_COMMITS_PER_ROUND:
            try:
                wait = deadline - time.monotonic()
                handed.append(self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait())
            except queue.Empty:
                break
        return handed

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything handed over is published; False on timeout."""
        with self.idle:
            return self.idle.wait_for(lambda: self.pending == 0, timeout_s)

    def stop(self, timeout_s: float) -> bool:
        """Publish everything handed over, then end the thread; False if that took too long."""
        deadline = time.monotonic() + timeout_s
        flushed = self.flush(timeout_s)
        self.queue.put(STOP)
        self.thread.join(max(0.0, deadline - time.monotonic()))
        return flushed and not self.thread.is_alive()


# This process's publisher thread (eventing.runtime flushes and stops it at exit).
publisher = PerProcess(Publisher, stop=Publisher.stop)


def flush(timeout_s: float = 5.0) -> bool:
    """Wait for this process's pending publishes (benchmarks and tests)."""
    current = publisher.existing()
    return current.flush(timeout_s) if current is not None else True


def enqueue_on_commit(rows: list[EventLog], *, using: str, count: bool = False) -> None:
    """Publish `rows` once the transaction holding them commits (never if it rolls back).

    With `count`, the same callback also counts them as emitted (one callback per emit: a
    save() with a trigger pays for one).
    """
    if _holders:
        for handler in list(_holders):
            handler(rows, using)
        return
    sendable = any(row.enqueued_at is not None for row in rows)
    if not sendable and not count:
        return

    def committed() -> None:
        if count:
            count_emitted(rows)
        if not sendable:
            return
        if settings.PUBLISH_IN_BACKGROUND:
            publisher().submit(rows, using)
        else:
            publish_rows(rows, using=using)

    transaction.on_commit(committed, using=using)
