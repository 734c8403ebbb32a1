"""The trigger, event type and queue forms: errors name the field, saved secrets stay hidden."""

from __future__ import annotations

import pytest

from mission_control.forms import MASK, EventTypeForm, QueueEventForm, TriggerForm
from tests.factories import EventTypeFactory, TriggerFactory

pytestmark = pytest.mark.django_db

BASE = {
    "name": "t1",
    "description": "",
    "kind": "custom",
    "custom_type": "order_placed",
    "source_model": "",
    "source_storage": "",
    "path_pattern": "",
    "filter": "{}",
    "url": "https://example.com/hook",
    "headers": "[]",
    "timeout_ms": 5000,
    "retries": 3,
    "backoff_base_s": 5,
    "backoff_max_s": 3600,
    "retry_policy": "transient",
    "retry_statuses": "[]",
    "circuit_failures": 10,
    "delay_s": 0,
    "enabled": "on",
    "paused_reason": "",
}


def form(instance=None, **changes):
    return TriggerForm(data={**BASE, **changes}, instance=instance)


def test_custom_trigger_is_valid():
    f = form()
    assert f.is_valid(), f.errors
    trigger = f.save()
    assert (trigger.type, trigger.source) == ("order_placed", "")


def test_send_authorization_is_editable():
    f = form(send_authorization="on")
    assert f.is_valid(), f.errors
    assert f.save().send_authorization is True
    clash = form(send_authorization="on", headers='[{"name": "Authorization", "value": "x"}]')
    assert not clash.is_valid()
    assert "send Authorization" in str(clash.errors["headers"])


def test_reserved_custom_name_is_refused_on_its_field():
    f = form(custom_type="DB_THING")
    assert not f.is_valid()
    assert "custom_type" in f.errors


def test_db_type_needs_a_model():
    f = form(kind="DB_INSERT")
    assert not f.is_valid()
    assert "source_model" in f.errors


def test_watch_fields_must_belong_to_the_model():
    f = form(kind="DB_UPDATE", source_model="testapp.Order", watch_fields=["testapp.Customer:name"])
    assert not f.is_valid()
    assert "watch_fields" in f.errors
    ok = form(
        kind="DB_UPDATE",
        source_model="testapp.Order",
        watch_fields=["testapp.Order:status"],
        payload_fields=["testapp.Order:total"],
    )
    assert ok.is_valid(), ok.errors
    trigger = ok.save()
    assert trigger.watch_fields == ["status"]
    assert trigger.payload_fields == ["total"]


def test_watch_fields_only_for_db_update():
    f = form(kind="DB_INSERT", source_model="testapp.Order", watch_fields=["testapp.Order:status"])
    assert not f.is_valid()
    assert "watch_fields" in f.errors


def test_file_type_offers_eventing_storage_aliases_only():
    f = form(kind="FILE_CREATE", source_storage="evented_files")
    offered = [alias for alias, _ in f.fields["source_storage"].choices if alias]
    assert offered == ["evented_files", "evented_memory"]
    assert f.is_valid(), f.errors
    assert f.save().source == "evented_files"


def test_file_type_refuses_a_storage_that_is_not_wrapped():
    f = form(kind="FILE_CREATE", source_storage="default")
    assert not f.is_valid()
    assert "source_storage" in f.errors


def test_bad_url_is_reported_on_url():
    f = form(url="ftp://nope")
    assert not f.is_valid()
    assert "url" in f.errors


def test_header_values_are_masked_and_kept():
    trigger = TriggerFactory(
        headers=[
            {"name": "X-Key", "value": "s3cret"},
            {"name": "Authorization", "value_from_env": "HOOK_TOKEN"},
        ]
    )
    shown = TriggerForm(instance=trigger)
    rendered = str(shown["headers"])
    assert "s3cret" not in rendered
    assert MASK in rendered
    assert "HOOK_TOKEN" in rendered
    data = {
        **BASE,
        "name": trigger.name,
        "custom_type": trigger.type,
        "headers": shown["headers"].value(),
    }
    f = TriggerForm(data=data, instance=trigger)
    assert f.is_valid(), f.errors
    assert f.save().headers[0] == {"name": "X-Key", "value": "s3cret"}


def test_mask_on_a_new_header_is_an_error():
    f = form(headers=f'[{{"name": "X-New", "value": "{MASK}"}}]')
    assert not f.is_valid()
    assert "X-New" in str(f.errors["headers"])


def test_event_type_schema_is_checked_as_a_schema():
    bad = EventTypeForm(
        data={
            "name": "t",
            "description": "",
            "queue_rule": "allow",
            "schema": '{"type": "no-such-type"}',
        }
    )
    assert not bad.is_valid()
    assert "schema" in bad.errors
    good = EventTypeForm(
        data={
            "name": "t",
            "description": "",
            "queue_rule": "allow",
            "schema": '{"type": "object", "required": ["id"]}',
        }
    )
    assert good.is_valid(), good.errors


def test_queue_form_reports_schema_errors_on_the_payload():
    EventTypeFactory(
        name="order_placed",
        schema={"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
    )
    bad = QueueEventForm(data={"type": "order_placed", "payload": '{"id": "x"}'})
    assert not bad.is_valid()
    assert "payload.id: 'x' is not of type 'integer'" in bad.errors["payload"]
    missing = QueueEventForm(data={"type": "order_placed", "payload": "{}"})
    assert not missing.is_valid()
    assert "payload: 'id' is a required property" in missing.errors["payload"]
    good = QueueEventForm(data={"type": "order_placed", "payload": '{"id": 1}'})
    assert good.is_valid(), good.errors


def test_queue_form_refuses_bad_json_and_both_times():
    EventTypeFactory(name="order_placed")
    f = QueueEventForm(
        data={
            "type": "order_placed",
            "payload": "{nope",
            "delay_s": "5",
            "deliver_at": "2030-01-01T10:00",
        }
    )
    assert not f.is_valid()
    assert "payload" in f.errors
    assert "deliver_at" in f.errors


def test_transform_is_saved_and_a_syntax_error_is_shown_on_its_field():
    f = form(
        transform_method="PUT",
        transform_query='{"id": "{{ id }}"}',
        transform_body='{"id": {{ data.id }}}',
    )
    assert f.is_valid(), f.errors
    trigger = f.save()
    assert (trigger.transform_method, trigger.transform_query) == ("PUT", {"id": "{{ id }}"})
    broken = form(name="other", transform_body='{"id": {{ data.id }')
    assert not broken.is_valid()
    assert "line 1" in broken.errors["transform_body"][0]
