"""CRON triggers: one event per tick, exactly once across beat processes, missed ticks, e2e."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from eventing import emit
from eventing.capture import cron
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.waiting import wait_until
from triggers.models import Trigger


def cron_trigger(**fields) -> Trigger:
    fields.setdefault("type", "CRON")
    fields.setdefault("cron_expression", "* * * * *")
    fields.setdefault("cron_payload", {"job": "report"})
    return TriggerFactory(**fields)


def minute(base: dt.datetime, n: int, seconds: float = 0) -> dt.datetime:
    start = base.replace(second=0, microsecond=0) + dt.timedelta(minutes=n)
    return start + dt.timedelta(seconds=seconds)


def tick_times(trigger: Trigger) -> list[str]:
    rows = EventLog.objects.filter(trigger=trigger, type="CRON").order_by("created_at")
    return [row.payload["scheduled_time"] for row in rows]


@pytest.mark.django_db(transaction=True)
def test_two_beat_processes_fire_every_minute_exactly_once():
    trigger = cron_trigger()
    # A day ahead: the session worker's own beat (real time) can never reach these ticks.
    base = timezone.now() + dt.timedelta(days=1)
    results: list[cron.TickResult] = []
    lock = threading.Lock()

    def beat(now: dt.datetime, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            result = cron.fire_due_ticks(now)
            with lock:
                results.append(result)
        finally:
            connection.close()

    for n in range(5):
        # Both processes look a few seconds into the minute, at the same moment.
        barrier = threading.Barrier(2)
        threads = [
            threading.Thread(target=beat, args=(minute(base, n, seconds=s), barrier))
            for s in (2, 3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    expected = [minute(base, n).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for n in range(5)]
    assert tick_times(trigger) == expected
    assert sum(r.fired for r in results) == 5
    event = EventLog.objects.filter(trigger=trigger).first()
    assert event.payload == {
        "name": trigger.name,
        "scheduled_time": event.payload["scheduled_time"],
        "payload": {"job": "report"},
    }
    assert event.idempotency_key == f"cron:{event.payload['scheduled_time']}"


@pytest.mark.django_db
def test_a_restarted_beat_does_not_fire_a_tick_again():
    trigger = cron_trigger()
    base = timezone.now() + dt.timedelta(days=1)
    cron.fire_due_ticks(minute(base, 0, seconds=1))
    cron.fire_due_ticks(minute(base, 0, seconds=30))  # the same tick, seen again
    # The mark moved back (an old form saved over it): the event's key still refuses it.
    Trigger.objects.filter(pk=trigger.pk).update(cron_last_tick=None)
    again = cron.fire_due_ticks(minute(base, 0, seconds=45))

    assert len(tick_times(trigger)) == 1
    assert again.fired == 0


@pytest.mark.django_db
def test_a_check_logs_a_line_only_when_a_tick_fired(caplog):
    cron_trigger()
    base = timezone.now() + dt.timedelta(days=1)
    with caplog.at_level("INFO", logger="eventing.capture.cron"):
        fired = cron.fire_due_ticks(minute(base, 0, seconds=1))
        idle = cron.fire_due_ticks(minute(base, 0, seconds=6))  # the next check, 5 s later
    lines = [r.getMessage() for r in caplog.records if r.name == "eventing.capture.cron"]
    assert (fired.fired, idle.fired) == (1, 0)
    assert lines == ["cron fired=1 skipped=0"]


@pytest.mark.django_db
def test_ticks_missed_during_downtime_fire_once_or_are_skipped():
    catching_up = cron_trigger(name="catching_up")
    skipping = cron_trigger(name="skipping", cron_skip_missed=True)
    base = timezone.now() + dt.timedelta(days=1)
    cron.fire_due_ticks(minute(base, 0, seconds=1))
    # Beat is down for ten minutes and comes back half a minute into the tenth.
    cron.fire_due_ticks(minute(base, 10, seconds=30))
    # Then it runs on time again.
    cron.fire_due_ticks(minute(base, 11, seconds=2))

    stamp = lambda n: minute(base, n).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    assert tick_times(catching_up) == [stamp(0), stamp(10), stamp(11)]
    # 10:30 is within CRON_MISSED_AFTER_S of the tick at 10: on time, so it fires too; the
    # ticks 1 to 9 were missed and collapse into nothing for a trigger that skips them.
    assert tick_times(skipping) == [stamp(0), stamp(10), stamp(11)]


@pytest.mark.django_db
def test_a_late_tick_is_dropped_only_by_a_trigger_that_skips_missed_ticks(settings):
    settings.EVENTING = {**settings.EVENTING, "CRON_MISSED_AFTER_S": 60}
    catching_up = cron_trigger(name="catching_up", cron_expression="0 * * * *")
    skipping = cron_trigger(name="skipping", cron_expression="0 * * * *", cron_skip_missed=True)
    base = (timezone.now() + dt.timedelta(days=1)).replace(minute=0)
    cron.fire_due_ticks(minute(base, 0, seconds=5))
    late = cron.fire_due_ticks(minute(base, 60 * 3 + 20))  # three hours later, 20 min late

    assert len(tick_times(catching_up)) == 2
    assert len(tick_times(skipping)) == 1
    assert late.skipped == 1
    skipping.refresh_from_db()
    assert skipping.cron_last_tick == minute(base, 60 * 3)


@pytest.mark.django_db
def test_emitting_the_type_cron_from_code_reaches_no_cron_trigger():
    cron_trigger()
    assert emit("CRON", {"x": 1}) == []


@pytest.mark.django_db
def test_ticks_before_the_trigger_existed_never_fire():
    trigger = cron_trigger(cron_expression="0 0 1 1 *")  # once a year
    result = cron.fire_due_ticks(timezone.now())
    assert result.fired == 0
    assert tick_times(trigger) == []


@pytest.mark.django_db
def test_next_ticks_follow_the_timezone():
    trigger = cron_trigger(cron_expression="0 9 * * *", cron_timezone="Europe/Paris")
    now = dt.datetime(2026, 3, 28, 12, 0, tzinfo=dt.UTC)
    first, second = cron.next_ticks(trigger, 2, now=now)
    assert (first.isoformat(), second.isoformat()) == (
        "2026-03-29T09:00:00+02:00",  # summer time starts that night
        "2026-03-30T09:00:00+02:00",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"cron_expression": "61 * * * *"}, "cron_expression"),
        ({"cron_expression": "* * * * * *"}, "cron_expression"),
        ({"cron_expression": ""}, "cron_expression"),
        ({"cron_expression": "* * * * *", "cron_timezone": "Mars/Olympus"}, "cron_timezone"),
        ({"type": "order_placed", "cron_expression": "* * * * *"}, "cron_expression"),
        ({"source": "testapp.Order"}, "source"),
    ],
)
def test_invalid_cron_settings_are_refused_naming_the_field(fields, where):
    trigger = Trigger(**{"name": "t", "type": "CRON", "url": "http://127.0.0.1:9/", **fields})
    with pytest.raises(ValidationError) as info:
        trigger.full_clean()
    assert where in info.value.message_dict


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_tick_is_delivered_like_any_other_event(worker, receiver):
    trigger = cron_trigger(url=receiver.url("/cron"))
    tick_time = timezone.now() + dt.timedelta(days=2)
    cron.fire_due_ticks(minute(tick_time, 0, seconds=1))

    [request] = receiver.wait_for("/cron")
    body = request.json()
    assert body["type"] == "CRON"
    assert body["data"]["name"] == trigger.name
    assert body["data"]["payload"] == {"job": "report"}
    assert request.headers["X-Eventing-Trigger"] == trigger.name
    wait_until(
        lambda: EventLog.objects.filter(trigger=trigger, status="processed").exists(),
        message="the tick's event processed",
    )
