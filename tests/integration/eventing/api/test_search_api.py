"""Payload search and the invocation list over the HTTP API: exactly the matching rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventing.models import EventLog, InvocationLog
from eventing.ops import search
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/eventing/events/"
INVOCATIONS = "/api/eventing/invocations/"


def record(trigger, payload, **fields) -> EventLog:
    return EventLog.objects.create(
        batch_id=fields.pop("batch_id", "00000000-0000-0000-0000-000000000000"),
        type=trigger.type,
        trigger=trigger,
        trigger_name=trigger.name,
        payload=payload,
        deliver_at=timezone.now(),
        **fields,
    )


@pytest.fixture
def events():
    trigger = TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    rows = {
        "paid_42": record(trigger, {"customer_id": 42, "new": {"status": "paid"}}),
        "paid_43": record(trigger, {"customer_id": 43, "new": {"status": "paid"}}),
        "new_42": record(trigger, {"customer_id": 42, "new": {"status": "new"}}),
        "text_42": record(trigger, {"customer_id": "42", "new": {"status": "paidup"}}),
        "flag": record(trigger, {"vip": True, "new": {"status": None}}),
        "list": record(trigger, [{"customer_id": 42}]),
    }
    return {name: str(row.id) for name, row in rows.items()}


def ids(reply) -> set[str]:
    assert reply.status_code == 200, reply.content
    return {row["id"] for row in reply.json()["results"]}


def test_a_payload_filter_returns_exactly_the_matching_events(admin_client, events):
    found = ids(admin_client.get(EVENTS, {"payload__customer_id": "42"}))
    assert found == {events["paid_42"], events["new_42"], events["text_42"]}


def test_a_nested_filter_and_two_filters_together(admin_client, events):
    assert ids(admin_client.get(EVENTS, {"payload__new__status": "paid"})) == {
        events["paid_42"],
        events["paid_43"],
    }
    both = {"payload__new__status": "paid", "payload__customer_id": "42"}
    assert ids(admin_client.get(EVENTS, both)) == {events["paid_42"]}


def test_booleans_and_null_match_as_json_and_as_text(admin_client, events):
    assert ids(admin_client.get(EVENTS, {"payload__vip": "true"})) == {events["flag"]}
    assert ids(admin_client.get(EVENTS, {"payload__new__status": "null"})) == {events["flag"]}
    assert ids(admin_client.get(EVENTS, {"payload__missing": "1"})) == set()


def test_lookup_names_are_keys_not_lookups(admin_client, events):
    reply = admin_client.get(EVENTS, {"payload__new__status__regex": "^p"})
    assert ids(reply) == set()


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({f"payload__k{n}": "1" for n in range(search.MAX_FILTERS + 1)}, "At most"),
        ({"payload__" + "__".join(["a"] * (search.MAX_DEPTH + 1)): "1"}, "levels deep"),
        ({"payload__a": "x" * (search.MAX_VALUE_LENGTH + 1)}, "characters"),
        ({"payload__1a": "x"}, "not a payload key"),
        ({"payload__a b": "x"}, "not a payload key"),
        ({"payload__": "x"}, "not a payload key"),
    ],
)
def test_filters_out_of_bounds_get_a_400_naming_the_parameter(admin_client, events, params, why):
    reply = admin_client.get(EVENTS, params)
    assert reply.status_code == 400
    body = reply.content.decode()
    assert why in body
    assert list(params)[-1][:20] in body


def test_the_invocation_list_filters_by_trigger_status_code_and_time(admin_client):
    ok = TriggerFactory(name="ok_hook")
    other = TriggerFactory(name="other_hook")
    now = timezone.now()
    attempts = {}
    for name, trigger, code, minutes_ago in [
        ("ok_500", ok, 500, 30),
        ("ok_200", ok, 200, 10),
        ("ok_none", ok, None, 90),
        ("other_500", other, 500, 5),
    ]:
        event = record(trigger, {"n": name})
        attempts[name] = InvocationLog.objects.create(
            event=event,
            attempt=1,
            invoked_at=now - dt.timedelta(minutes=minutes_ago),
            duration_ms=3,
            request={"url": "http://x/"},
            response_status_code=code,
            succeeded=code == 200,
        ).id

    def listed(**params) -> list[int]:
        reply = admin_client.get(INVOCATIONS, params)
        assert reply.status_code == 200, reply.content
        return [row["id"] for row in reply.json()["results"]]

    assert listed(trigger="ok_hook") == [
        attempts["ok_200"],
        attempts["ok_500"],
        attempts["ok_none"],
    ]
    assert listed(status_code=500) == [attempts["other_500"], attempts["ok_500"]]
    assert listed(trigger="ok_hook", succeeded="false") == [attempts["ok_500"], attempts["ok_none"]]
    after = (now - dt.timedelta(minutes=60)).isoformat()
    before = (now - dt.timedelta(minutes=8)).isoformat()
    assert listed(invoked_after=after, invoked_before=before) == [
        attempts["ok_200"],
        attempts["ok_500"],
    ]
    [row] = admin_client.get(INVOCATIONS, {"status_code": 200}).json()["results"]
    assert row["trigger"] == "ok_hook"
    assert row["response_status_code"] == 200


def test_the_invocation_list_refuses_a_bad_status_code(admin_client):
    reply = admin_client.get(INVOCATIONS, {"status_code": "abc"})
    assert reply.status_code == 400
    assert "status_code" in reply.content.decode()


def test_the_invocation_list_needs_the_view_permission(client, django_user_model):
    user = django_user_model.objects.create_user("viewer", password="pw")
    client.force_login(user)
    assert client.get(INVOCATIONS).status_code == 403


def test_cron_and_actor_fields_over_the_trigger_api(admin_client):
    body = {
        "name": "nightly",
        "type": "CRON",
        "url": "https://example.com/hook",
        "cron_expression": "0 3 * * *",
        "cron_timezone": "Asia/Tokyo",
        "cron_payload": {"job": "cleanup"},
    }
    reply = admin_client.post("/api/eventing/triggers/", body, content_type="application/json")
    assert reply.status_code == 201, reply.content
    data = reply.json()
    assert (data["cron_expression"], data["cron_skip_missed"], data["send_actor"]) == (
        "0 3 * * *",
        False,
        True,
    )
    assert data["cron_last_tick"] is None
    bad = admin_client.post(
        "/api/eventing/triggers/",
        {**body, "name": "bad", "cron_expression": "0 3 * *"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "cron_expression" in bad.content.decode()


def test_a_repeated_payload_filter_requires_every_value(admin_client, events):
    """Attack: `payload__customer_id=42&payload__customer_id=43` kept only the last value, so
    a caller narrowing by two values got the events of one of them."""
    both = admin_client.get(f"{EVENTS}?payload__customer_id=42&payload__customer_id=43")
    assert ids(both) == set()
    same = admin_client.get(f"{EVENTS}?payload__customer_id=42&payload__new__status=paid")
    assert ids(same) == {events["paid_42"]}
    changelist = admin_client.get(
        "/mission-control/eventing/eventlog/?payload__customer_id=42&payload__customer_id=43"
    )
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count == 0
