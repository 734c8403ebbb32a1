"""The logic behind every Mission Control action, called without a request."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventing.models import EventLog, EventStatus
from mission_control import actions
from tests.factories import TriggerFactory
from tests.support.mission_control import make_event
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def test_enable_and_disable_count_only_changes():
    on = TriggerFactory(enabled=True)
    off = TriggerFactory(enabled=False)
    assert actions.set_enabled([on.pk, off.pk], False) == 1
    assert not Trigger.objects.filter(enabled=True).exists()
    assert actions.set_enabled([on.pk, off.pk], True) == 2
    assert Trigger.objects.filter(enabled=True).count() == 2


def test_pause_keeps_reason_and_resume_clears_it():
    trigger = TriggerFactory()
    assert actions.pause_triggers([trigger.pk], "maintenance") == 1
    assert actions.pause_triggers([trigger.pk], "again") == 0  # already paused
    trigger.refresh_from_db()
    assert (trigger.paused, trigger.paused_reason) == (True, "maintenance")
    assert actions.resume_triggers([trigger.pk]) == 1
    trigger.refresh_from_db()
    assert (trigger.paused, trigger.paused_reason) == (False, "")


def test_rotate_signing_secret():
    trigger = TriggerFactory()
    old = trigger.signing_secret
    new = actions.rotate_signing_secret(trigger)
    trigger.refresh_from_db()
    assert trigger.signing_secret == new != old
    assert new.startswith("whsec_")


def test_duplicate_gets_a_free_name_is_disabled_and_has_its_own_secret():
    trigger = TriggerFactory(name="orders", headers=[{"name": "X-A", "value": "1"}])
    first = actions.duplicate_trigger(trigger)
    second = actions.duplicate_trigger(trigger)
    assert (first.name, second.name) == ("orders_copy", "orders_copy_2")
    assert not first.enabled
    assert first.headers == trigger.headers
    assert first.signing_secret != trigger.signing_secret
    assert Trigger.objects.get(pk=trigger.pk).enabled


def test_send_test_event_reaches_only_that_trigger(receiver):
    tested = TriggerFactory(type="order_placed", url=receiver.url("/ok/tested"))
    TriggerFactory(type="order_placed", url=receiver.url("/ok/other"))
    result = actions.send_test_event(tested)
    assert result.succeeded
    assert result.status_code == 200
    assert result.reply == '{"ok": true}'
    [got] = receiver.on("/ok/tested")
    assert got.headers["X-Eventing-Trigger"] == tested.name
    assert got.json()["data"]["test"] is True
    assert receiver.on("/ok/other") == []
    event = EventLog.objects.get(id=result.event_id)
    assert event.status == EventStatus.PROCESSED
    assert event.invocations.count() == 1
    assert "processed (HTTP 200)" in result.summary()


def test_send_test_event_reports_a_failure(receiver):
    trigger = TriggerFactory(type="order_placed", url=receiver.url("/status/500"))
    result = actions.send_test_event(trigger)
    assert not result.succeeded
    assert result.status_code == 500
    assert "HTTP 500" in result.summary()
    assert EventLog.objects.get(id=result.event_id).last_status_code == 500


def test_send_test_event_for_a_db_trigger_has_a_db_shaped_payload(receiver):
    trigger = TriggerFactory(type="DB_UPDATE", source="testapp.Order", url=receiver.url("/ok/db"))
    actions.send_test_event(trigger)
    data = receiver.on("/ok/db")[0].json()["data"]
    assert data["model"] == "testapp.Order"
    assert data["table"] == "testapp_order"
    assert data["changed"] == []


def test_send_test_event_to_a_paused_trigger_is_not_sent(receiver):
    trigger = TriggerFactory(type="order_placed", paused=True, url=receiver.url("/ok/p"))
    result = actions.send_test_event(trigger)
    assert result.skipped == "trigger paused or disabled"
    assert "not sent" in result.summary()
    assert receiver.on("/ok/p") == []


def test_redeliver_stages_finished_events_only():
    trigger = TriggerFactory()
    failed = make_event(trigger, EventStatus.FAILED)
    staged = make_event(trigger, EventStatus.STAGED)
    assert actions.redeliver([failed.pk, staged.pk]) == 1
    failed.refresh_from_db()
    assert failed.status == EventStatus.STAGED
    assert failed.attempts == 0


def test_cancel_cancels_staged_events_only():
    trigger = TriggerFactory()
    staged = make_event(trigger, EventStatus.STAGED)
    done = make_event(trigger, EventStatus.PROCESSED)
    assert actions.cancel([staged.pk, done.pk]) == 1
    staged.refresh_from_db()
    done.refresh_from_db()
    assert staged.status == EventStatus.CANCELLED
    assert staged.remark == "Cancelled in Mission Control"
    assert done.status == EventStatus.PROCESSED


def test_redeliver_failed_since_picks_that_trigger_and_window(monkeypatch):
    trigger, other = TriggerFactory(), TriggerFactory()
    recent = [make_event(trigger, EventStatus.FAILED, created_ago_s=60) for _ in range(3)]
    old = make_event(trigger, EventStatus.FAILED, created_ago_s=3 * 3600)
    processed = make_event(trigger, EventStatus.PROCESSED)
    foreign = make_event(other, EventStatus.FAILED)
    monkeypatch.setattr(actions, "REDELIVER_CHUNK", 2)  # more than one chunk
    since = timezone.now() - dt.timedelta(hours=1)
    assert actions.redeliver_failed_since(trigger.pk, since) == 3
    statuses = dict(EventLog.objects.values_list("id", "status"))
    assert all(statuses[e.id] == EventStatus.STAGED for e in recent)
    assert statuses[old.id] == EventStatus.FAILED
    assert statuses[processed.id] == EventStatus.PROCESSED
    assert statuses[foreign.id] == EventStatus.FAILED
