"""Mission Control: payload search on the event list, the invocation list, CRON triggers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventing.models import EventLog, InvocationLog
from tests.factories import TriggerFactory
from tests.integration.mission_control.test_forms import form
from triggers.models import Trigger

pytestmark = pytest.mark.django_db

EVENTS = "/mission-control/eventing/eventlog/"
INVOCATIONS = "/mission-control/eventing/invocationlog/"


def record(trigger, payload) -> EventLog:
    return EventLog.objects.create(
        batch_id="00000000-0000-0000-0000-000000000000",
        type=trigger.type,
        trigger=trigger,
        trigger_name=trigger.name,
        payload=payload,
        deliver_at=timezone.now(),
    )


def listed_ids(page) -> set[str]:
    assert page.status_code == 200
    shown = page.context["cl"].result_list
    return {str(row.id) for row in shown}


def test_the_event_list_filters_by_payload_values(admin_client):
    trigger = TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    paid_42 = record(trigger, {"customer_id": 42, "new": {"status": "paid"}})
    paid_7 = record(trigger, {"customer_id": 7, "new": {"status": "paid"}})
    record(trigger, {"customer_id": 42, "new": {"status": "new"}})

    page = admin_client.get(EVENTS, {"payload__new__status": "paid"})
    assert listed_ids(page) == {str(paid_42.id), str(paid_7.id)}
    both = admin_client.get(EVENTS, {"payload__new__status": "paid", "payload__customer_id": "42"})
    assert listed_ids(both) == {str(paid_42.id)}
    # The filter survives paging and the other filters' links.
    assert "payload__new__status=paid" in page.context["cl"].get_query_string({"p": 2})


def test_a_payload_filter_out_of_bounds_is_dropped_with_a_warning_naming_it(admin_client):
    page = admin_client.get(EVENTS, {"payload__a": "x" * 500, "status": "failed"}, follow=True)
    assert page.status_code == 200
    warnings = [str(m) for m in page.context["messages"]]
    assert any("payload__a" in w and "characters" in w for w in warnings), warnings
    assert page.redirect_chain[-1][0].endswith("?status=failed")


def test_the_invocation_list_shows_attempts_across_events_filtered(admin_client):
    ok = TriggerFactory(name="ok_hook")
    other = TriggerFactory(name="other_hook")
    now = timezone.now()
    made = {}
    for name, trigger, code in [("a", ok, 500), ("b", ok, 200), ("c", other, 500), ("d", ok, None)]:
        made[name] = InvocationLog.objects.create(
            event=record(trigger, {"n": name}),
            attempt=1,
            invoked_at=now - dt.timedelta(minutes=len(made)),
            duration_ms=5,
            request={"url": "http://x/"},
            response_status_code=code,
            succeeded=code == 200,
        ).pk

    def shown(**params) -> set[int]:
        page = admin_client.get(INVOCATIONS, params)
        assert page.status_code == 200
        return {row.pk for row in page.context["cl"].result_list}

    assert shown() == set(made.values())
    assert shown(trigger=str(ok.pk)) == {made["a"], made["b"], made["d"]}
    assert shown(trigger=str(ok.pk), status_code="500") == {made["a"]}
    assert shown(status_code="none") == {made["d"]}
    assert shown(succeeded__exact="1") == {made["b"]}
    page = admin_client.get(INVOCATIONS, {"status_code": "500"})
    assert b"other_hook" in page.content
    detail = admin_client.get(f"{INVOCATIONS}{made['a']}/change/")
    assert detail.status_code == 200


def test_a_cron_trigger_is_made_in_the_form_and_shows_its_next_runs(admin_client):
    f = form(
        kind="CRON",
        custom_type="",
        cron_expression="30 8 * * 1-5",
        cron_timezone="Europe/Paris",
        cron_payload='{"report": "daily"}',
    )
    assert f.is_valid(), f.errors
    trigger = f.save()
    assert (trigger.type, trigger.source, trigger.cron_payload) == (
        "CRON",
        "",
        {"report": "daily"},
    )

    page = admin_client.get(f"/mission-control/triggers/trigger/{trigger.pk}/change/")
    assert page.status_code == 200
    assert page.content.count(b"08:30:00+0") == 5  # five next runs, Paris time
    listing = admin_client.get("/mission-control/triggers/trigger/")
    assert b"08:30:00+0" in listing.content


def test_a_bad_cron_expression_is_reported_on_its_field():
    f = form(kind="CRON", custom_type="", cron_expression="every minute")
    assert not f.is_valid()
    assert "cron_expression" in f.errors
    assert not Trigger.objects.exists()
