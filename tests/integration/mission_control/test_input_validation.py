"""Mission Control answers bad input with a message or a form error, never a 500: list
parameters, JSON fields, and payloads checked by the API's own schema check."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from eventing.models import EventLog
from mission_control.forms import EventTypeForm, QueueEventForm, TriggerForm
from tests.factories import EventTypeFactory, TriggerFactory
from tests.integration.mission_control.test_forms import BASE
from tests.support.mission_control import make_event

pytestmark = pytest.mark.django_db
EVENTS = "mission_control:eventing_eventlog_changelist"
TRIGGERS = "mission_control:triggers_trigger_changelist"
TYPES = "mission_control:triggers_eventtype_changelist"


def nested(depth: int):
    value: list | int = 1
    for _ in range(depth):
        value = [value]
    return value


def warnings_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# Item 14: list parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "query", "words"),
    [
        (EVENTS, {"trigger": "abc"}, "not a trigger id"),
        (EVENTS, {"trigger": "1" * 30}, "not a trigger id"),
        (EVENTS, {"type": "\x00"}, "NUL"),
        (EVENTS, {"type": "bad type"}, "not an event type name"),
        (EVENTS, {"q": "key\x00"}, "NUL"),
        (EVENTS, {"status__exact": "\x00"}, "NUL"),
        (TRIGGERS, {"type__exact": "\x00"}, "NUL"),
        (TRIGGERS, {"q": "\x00"}, "NUL"),
        (TYPES, {"q": "\x00"}, "NUL"),
    ],
)
def test_bad_list_parameters_are_dropped_with_a_message(admin_client, page, query, words):
    trigger = TriggerFactory(name="kept", type="order_placed")
    make_event(trigger)
    url = reverse(page)
    response = admin_client.get(url, {**query, "o": "1"})
    assert response.status_code == 302
    assert response["Location"] == f"{url}?o=1"
    assert any(words in text for text in warnings_of(response))
    assert admin_client.get(response["Location"]).status_code == 200


def test_good_list_parameters_still_filter(admin_client):
    kept = TriggerFactory(name="kept", type="order_placed")
    other = TriggerFactory(name="other", type="order_shipped")
    make_event(kept)
    make_event(other)
    response = admin_client.get(reverse(EVENTS), {"trigger": kept.pk, "type": "order_placed"})
    assert response.status_code == 200
    assert [row.trigger_name for row in response.context["cl"].result_list] == ["kept"]


def test_operate_buttons_with_a_bad_id_are_a_404(admin_client):
    for name, args in [
        ("mission_control:triggers_trigger_operate", ["abc", "pause"]),
        ("mission_control:eventing_eventlog_operate", ["not-a-uuid", "cancel"]),
    ]:
        assert admin_client.post(reverse(name, args=args)).status_code == 404


def test_an_event_stored_too_deep_still_shows(admin_client):
    # Stored before the API applied the nesting limit.
    event = make_event(TriggerFactory(type="order_placed"), payload=nested(900))
    page = admin_client.get(reverse("mission_control:eventing_eventlog_change", args=[event.pk]))
    assert page.status_code == 200


# Item 14: JSON fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("filter", '{"new.status": "pa\\u0000id"}'),
        ("filter", '{"new.total": NaN}'),
        ("headers", '[{"name": "X-A", "value": "\\u0000"}]'),
        ("filter", '{"a": ' + "[" * 150 + "]" * 150 + "}"),
    ],
)
def test_trigger_json_fields_refuse_what_the_database_cannot_store(field, text):
    form = TriggerForm(data={**BASE, field: text})
    assert not form.is_valid()
    assert field in form.errors


def test_json_too_deep_to_parse_is_a_form_error_and_the_page_redraws(admin_client):
    text = "[" * 100_000 + "]" * 100_000
    response = admin_client.post(
        reverse("mission_control:triggers_eventtype_add"),
        {"name": "deep", "description": "", "queue_rule": "deny", "schema": text},
    )
    assert response.status_code == 200
    assert "schema" in response.context["adminform"].form.errors


def test_event_type_form_refuses_unsafe_schemas():
    for schema, words in [
        ('{"$ref": "#"}', "refers to itself"),
        ('{"$ref": "http://127.0.0.1:9/s.json"}', "points outside the schema"),
        ('{"enum": ["\\u0000"]}', "NUL"),
    ]:
        form = EventTypeForm(
            data={"name": "t", "description": "", "queue_rule": "allow", "schema": schema}
        )
        assert not form.is_valid()
        assert words in " ".join(form.errors["schema"])


# Item 5 on the queue page: the API's schema check ----------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("schema", "payload", "words"),
    [
        ({"$ref": "http://127.0.0.1:9/s.json"}, "{}", "cannot be applied"),
        ({"$ref": "#"}, "{}", "refers to itself"),
        ({"type": "string", "pattern": "^(a|a)+$"}, '"' + "a" * 5000 + '!"', "BUDGET_MS"),
        ({"type": "array", "uniqueItems": True}, "[1, 2, 1.0]", "non-unique"),
        ({}, str(nested(150)), "nested deeper"),
    ],
)
def test_queue_page_applies_the_api_schema_check(admin_client, schema, payload, words):
    EventTypeFactory(name="checked", schema=schema)
    TriggerFactory(name="checked_hook", type="checked")
    form = QueueEventForm(data={"type": "checked", "payload": payload})
    assert not form.is_valid()
    assert words in " ".join(form.errors["payload"])
    response = admin_client.post(
        reverse("mission_control:queue_event"), {"type": "checked", "payload": payload}
    )
    assert response.status_code == 200
    assert not EventLog.objects.exists()
