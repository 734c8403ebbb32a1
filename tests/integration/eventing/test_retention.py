"""Retention: eventing_cleanup and the daily task delete old finished rows, in small batches."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from eventing import emit
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.tasks import cleanup
from tests.factories import TriggerFactory
from tests.waiting import wait_until


def make_events(count: int, status: str, age_days: float, trigger=None) -> list:
    """`count` events of `status` created `age_days` ago, each with one invocation."""
    now = timezone.now()
    rows = [
        EventLog(
            batch_id=uuid.uuid4(),
            type="order_placed",
            trigger=trigger,
            trigger_name=trigger.name if trigger else "gone",
            payload={"n": n},
            status=status,
            deliver_at=now,
            attempts=1,
        )
        for n in range(count)
    ]
    EventLog.objects.bulk_create(rows, batch_size=1000)
    ids = [row.id for row in rows]
    # auto_now_add stamps "now" on insert: age them afterwards.
    EventLog.objects.filter(id__in=ids).update(created_at=now - dt.timedelta(days=age_days))
    InvocationLog.objects.bulk_create(
        [
            InvocationLog(event_id=pk, attempt=1, invoked_at=now, duration_ms=1, request={})
            for pk in ids
        ],
        batch_size=1000,
    )
    return ids


def run(*args: str) -> str:
    out = StringIO()
    call_command("eventing_cleanup", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_cleanup_deletes_only_expired_finished_rows():
    old_processed = make_events(3, EventStatus.PROCESSED, age_days=8)
    new_processed = make_events(2, EventStatus.PROCESSED, age_days=6)
    old_failed = make_events(2, EventStatus.FAILED, age_days=31)
    young_failed = make_events(2, EventStatus.FAILED, age_days=20)
    old_staged = make_events(2, EventStatus.STAGED, age_days=400)
    old_processing = make_events(1, EventStatus.PROCESSING, age_days=400)

    output = run("--batch-size", "2")
    assert "processed: deleted 3 event(s)" in output
    assert "failed: deleted 2 event(s)" in output
    assert "5 event(s) deleted in total" in output
    assert "processed: 2 deleted so far" in output  # progress after each batch
    kept = set(EventLog.objects.values_list("id", flat=True))
    assert kept == {*new_processed, *young_failed, *old_staged, *old_processing}
    assert not InvocationLog.objects.filter(event_id__in=old_processed + old_failed).exists()
    assert InvocationLog.objects.count() == len(kept)


@pytest.mark.django_db
def test_dry_run_deletes_nothing():
    make_events(4, EventStatus.CANCELLED, age_days=30)
    output = run("--dry-run")
    assert "cancelled: would delete 4 event(s)" in output
    assert "Dry run" in output
    assert EventLog.objects.count() == 4
    assert InvocationLog.objects.count() == 4


@pytest.mark.django_db
def test_retention_none_keeps_forever(settings):
    settings.EVENTING = {**settings.EVENTING, "RETENTION": {"processed": None, "failed": 1}}
    make_events(2, EventStatus.PROCESSED, age_days=3000)
    make_events(2, EventStatus.FAILED, age_days=2)
    output = run()
    assert "processed" not in output.split("failed")[0]  # not even counted
    assert EventLog.objects.filter(status=EventStatus.PROCESSED).count() == 2
    assert not EventLog.objects.filter(status=EventStatus.FAILED).exists()


@pytest.mark.django_db
def test_bad_batch_size_is_refused():
    with pytest.raises(CommandError, match="--batch-size"):
        run("--batch-size", "0")


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit):
        call_command("eventing_cleanup", "--help")
    text = capsys.readouterr().out
    assert "RETENTION" in text
    assert "--dry-run" in text
    assert "--batch-size" in text


@pytest.mark.django_db
def test_daily_task_runs_the_same_cleanup():
    make_events(3, EventStatus.PROCESSED, age_days=10)
    assert cleanup() == {"processed": 3, "failed": 0, "cancelled": 0}
    assert not EventLog.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_cleanup_does_not_block_a_concurrent_writer():
    """A writer emitting in a loop keeps committing, quickly, all through a long cleanup."""
    trigger = TriggerFactory(url="http://127.0.0.1:9/never")
    expired = make_events(3000, EventStatus.PROCESSED, age_days=30, trigger=trigger)
    stop = threading.Event()
    latencies: list[tuple[float, float]] = []  # (finished at, seconds taken)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                # Due in an hour: recorded, but no worker of the session touches it.
                emit("order_placed", {"writer": True}, delay_s=3600)
                latencies.append((time.monotonic(), time.monotonic() - started))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_until(lambda: len(latencies) >= 3, message="the writer warmed up")
        began = time.monotonic()
        output = run("--batch-size", "100")
        ended = time.monotonic()
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert "processed: deleted 3000 event(s)" in output
    assert not EventLog.objects.filter(id__in=expired).exists()
    overlapping = [took for at, took in latencies if at >= began and at - took <= ended]
    finished_during = [took for at, took in latencies if began <= at <= ended]
    print(
        f"cleanup {ended - began:.2f} s; {len(finished_during)} emits committed meanwhile, "
        f"slowest {max(overlapping, default=0):.3f} s"
    )
    # The writer kept committing while the cleanup ran, and no emit waited long.
    assert len(finished_during) >= 3, (len(finished_during), ended - began)
    assert max(overlapping) < 1.0, max(overlapping)
    written = EventLog.objects.filter(payload__writer=True).count()
    assert written == len(latencies)  # every emit of the writer is still there
