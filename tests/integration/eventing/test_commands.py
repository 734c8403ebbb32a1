"""eventing_sweep and eventing_redeliver: help, dry runs, filters, progress and bad input."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from eventing import emit
from eventing.dispatch.lag import LAG_HEARTBEAT
from eventing.maintenance.sweeper import sweep
from eventing.management.commands.eventing_redeliver import parse_since
from eventing.models import EventLog, EventStatus, Heartbeat
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def help_text(name: str) -> str:
    from django.core.management import load_command_class

    return load_command_class("eventing", name).create_parser("manage.py", name).format_help()


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("eventing_sweep", ["--dry-run", "--loop", "--until-idle"]),
        ("eventing_redeliver", ["--trigger", "--status", "--since", "--dry-run"]),
        ("eventing_listen", ["--port", "--secret", "--reply-status"]),
    ],
)
def test_help_explains_the_options(name, options):
    text = help_text(name)
    for option in options:
        assert option in text


def test_sweep_dry_run_changes_nothing(message_per_event):
    TriggerFactory(type="swept")
    event = emit("swept", {})[0]
    EventLog.objects.filter(id=event.id).update(enqueued_at=None)
    assert "to_enqueue=1" in run("eventing_sweep", "--dry-run")
    assert EventLog.objects.get(id=event.id).enqueued_at is None
    assert not Heartbeat.objects.filter(name="sweep").exists()  # a worker may have beaten
    message_per_event.reset_mock()

    output = run("eventing_sweep")
    assert "enqueued=1" in output
    assert message_per_event.call_count == 1
    assert EventLog.objects.get(id=event.id).enqueued_at is not None
    assert Heartbeat.objects.filter(name="sweep").exists()


def test_sweep_dry_run_counts_what_the_sweep_then_does(message_per_event):
    """Same rules: a recent queue lag keeps late messages from counting as lost in both, and
    rows released from an expired lease are sent by the same pass in both."""
    hook, paused = TriggerFactory(type="swept"), TriggerFactory(type="held", paused=True)
    now = timezone.now()

    def row(trigger, **state) -> None:
        event = next(e for e in emit(trigger.type, {}) if e.trigger_id == trigger.id)
        EventLog.objects.filter(id=event.id).update(**state)

    ago = {s: now - dt.timedelta(seconds=s) for s in (1, 20, 600)}
    row(hook, enqueued_at=None)  # never sent: sent
    row(hook, enqueued_at=ago[20], deliver_at=ago[20])  # behind the queue: left alone
    row(hook, enqueued_at=ago[20], deliver_at=ago[20])
    row(hook, enqueued_at=ago[600], deliver_at=ago[600])  # lost even so: sent again
    row(hook, enqueued_at=None, deliver_at=now + dt.timedelta(hours=1))  # not due soon
    lease = {"status": EventStatus.PROCESSING, "locked_until": ago[1], "enqueued_at": ago[20]}
    row(hook, attempts=1, **lease)  # its worker vanished: released, then sent
    row(hook, attempts=hook.retries + 1, **lease)  # on its last attempt: released as failed
    row(paused, enqueued_at=None)  # held
    Heartbeat.objects.create(name=LAG_HEARTBEAT, at=now, detail={"lag_s": 30})
    message_per_event.reset_mock()

    line = run("eventing_sweep", "--dry-run").removeprefix("Would sweep: ").split()
    would = {key: int(value) for key, value in (item.split("=") for item in line)}
    did = sweep()

    assert would == {"expired_leases": 2, "to_enqueue": 3, "held_by_paused_triggers": 1}
    assert (did["released"], did["enqueued"]) == (would["expired_leases"], would["to_enqueue"])
    assert message_per_event.call_count == would["to_enqueue"]


def test_sweep_until_idle_repeats_until_nothing_is_left(message_per_event):
    TriggerFactory(type="swept")
    for _ in range(3):
        emit("swept", {})
    EventLog.objects.update(enqueued_at=None)
    with mock.patch("eventing.maintenance.sweeper.BATCH_SIZE", 2):
        output = run("eventing_sweep", "--until-idle")
    assert "Sweep 1: released=0 enqueued=2" in output
    assert "Sweep 2: released=0 enqueued=1" in output
    assert "Done after 3 passes." in output
    assert not EventLog.objects.filter(enqueued_at__isnull=True).exists()


def test_sweep_refuses_contradictory_options():
    with pytest.raises(CommandError, match="--dry-run"):
        run("eventing_sweep", "--dry-run", "--loop")
    with pytest.raises(CommandError, match="--interval"):
        run("eventing_sweep", "--loop", "--interval", "0")


@pytest.fixture
def finished(message_per_event):
    """Failed, processed and cancelled events of two triggers, of different ages."""
    hook, other = TriggerFactory(name="hook", type="thing"), TriggerFactory(name="other")
    now = timezone.now()
    made = {}
    for label, trigger, status, age_h in [
        ("hook_failed_new", hook, EventStatus.FAILED, 1),
        ("hook_failed_old", hook, EventStatus.FAILED, 48),
        ("hook_processed", hook, EventStatus.PROCESSED, 1),
        ("hook_cancelled", hook, EventStatus.CANCELLED, 1),
        ("other_failed", other, EventStatus.FAILED, 1),
    ]:
        event = emit(trigger.type, {"label": label})
        row = next(e for e in event if e.trigger_id == trigger.id)
        EventLog.objects.filter(id=row.id).update(
            status=status, attempts=3, created_at=now - dt.timedelta(hours=age_h)
        )
        made[label] = row.id
    message_per_event.reset_mock()
    return made


def status(event_id) -> str:
    return EventLog.objects.get(id=event_id).status


def test_redeliver_dry_run_counts_per_trigger_and_changes_nothing(finished):
    output = run("eventing_redeliver", "--dry-run")
    assert "hook: 2" in output
    assert "other: 1" in output
    assert "Would redeliver 3 event(s)" in output
    assert status(finished["hook_failed_new"]) == EventStatus.FAILED


def test_redeliver_by_trigger_status_and_since(
    finished, message_per_event, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        output = run(
            "eventing_redeliver",
            "--trigger",
            "hook",
            "--since",
            "6h",
            "--status",
            "failed,cancelled",
        )
    assert "Redelivered 2 event(s)." in output
    assert status(finished["hook_failed_new"]) == EventStatus.STAGED
    assert status(finished["hook_cancelled"]) == EventStatus.STAGED
    assert EventLog.objects.get(id=finished["hook_failed_new"]).attempts == 0
    # Outside the filters: untouched.
    assert status(finished["hook_failed_old"]) == EventStatus.FAILED
    assert status(finished["hook_processed"]) == EventStatus.PROCESSED
    assert status(finished["other_failed"]) == EventStatus.FAILED
    assert message_per_event.call_count == 2


def test_redeliver_reports_progress_in_batches(finished):
    output = run("eventing_redeliver", "--batch-size", "1")
    assert "Redelivering 3 event(s)" in output
    assert "  1/3" in output
    assert "  2/3" in output
    assert "  3/3" in output
    assert EventLog.objects.filter(status=EventStatus.FAILED).count() == 0


def test_redeliver_with_nothing_matching(finished):
    assert "nothing redelivered" in run(
        "eventing_redeliver", "--since", "2026-01-01", "--until", "2026-01-02"
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--status", "staged"], "--status"),
        (["--status", "failed,bogus"], "--status"),
        (["--since", "yesterday-ish"], "--since"),
        (["--trigger", "nope"], "--trigger"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_redeliver_bad_input_names_the_option(args, field):
    with pytest.raises(CommandError, match=field):
        run("eventing_redeliver", *args)


def test_parse_since_forms():
    now = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    assert parse_since("90m", now) == now - dt.timedelta(minutes=90)
    assert parse_since("2d", now) == now - dt.timedelta(days=2)
    assert parse_since("2026-11-20", now) == dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    assert parse_since("2026-11-20T08:30:00+01:00", now) == dt.datetime(
        2026, 11, 20, 7, 30, tzinfo=dt.UTC
    )
