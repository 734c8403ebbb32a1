"""The trigger's field groups (triggers.fields): complete, and the source of every field list."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import ValidationError

from eventing.api.serializers import TriggerSerializer
from eventing.management.commands.eventing_triggers import TRIGGER_FIELDS
from mission_control.admin.triggers import TriggerAdmin
from mission_control.forms import TriggerForm
from tests.factories import TriggerFactory
from triggers import fields
from triggers.models import Trigger
from triggers.registry import TriggerSpec, load_index
from triggers.validation import GROUP_VALIDATORS, validate_trigger


def model_columns() -> set[str]:
    """Every concrete column of Trigger but its primary key."""
    return {f.name for f in Trigger._meta.concrete_fields if not f.primary_key}


def test_every_trigger_column_is_declared_in_exactly_one_group():
    declared = fields.declared_fields()
    missing = model_columns() - set(declared)
    assert not missing, f"Trigger fields missing from triggers.fields.GROUPS: {sorted(missing)}"
    assert len(declared) == len(set(declared)), "a field is declared in two groups"
    assert set(declared) <= model_columns()


def test_the_field_roles_name_declared_fields_only():
    declared = set(fields.declared_fields())
    roles = fields.READ_ONLY + fields.RUNTIME + fields.SECRETS + fields.CHOSEN_BY_KIND
    assert set(roles) <= declared
    assert set(fields.ONLY_FOR) <= declared
    assert {f.name for f in dataclasses.fields(TriggerSpec)} == set(fields.SPEC_FIELDS)


def test_every_group_has_a_validator():
    assert set(GROUP_VALIDATORS) == {group.key for group in fields.GROUPS}


def test_the_form_serializer_export_and_admin_follow_the_declaration():
    declared = set(fields.declared_fields())
    assert set(TriggerForm._meta.fields) == set(fields.form_fields())
    assert set(TriggerSerializer.Meta.fields) == declared | {"circuit"}
    assert set(TriggerSerializer.Meta.read_only_fields) == set(fields.READ_ONLY)
    assert set(TRIGGER_FIELDS) == declared - set(fields.READ_ONLY + fields.RUNTIME + fields.SECRETS)
    edit = set(flatten_fieldsets(TriggerAdmin.fieldsets))
    # Every field a user sets is on the page, as itself or through the kind pickers.
    assert set(fields.form_fields()) <= edit
    assert {"kind", "custom_type", "source_model", "source_storage"} <= edit
    view = set(flatten_fieldsets(TriggerAdmin.view_fieldsets))
    assert {"type", "source", "masked_headers", "masked_signing_secret"} <= view
    assert not {"headers", "signing_secret"} & view  # credentials only masked
    titles = [title for title, _ in TriggerAdmin.fieldsets]
    assert titles == [group.title for group in fields.GROUPS]


def test_a_group_knows_the_kinds_of_trigger_that_use_it():
    schedule = fields.group("schedule")
    assert schedule.used_by("CRON")
    assert not schedule.used_by("order_placed")
    assert fields.group("matching").used_by("order_placed")
    assert not fields.group("matching").used_by("CRON")
    with pytest.raises(LookupError):
        fields.group("nope")


@pytest.mark.parametrize(
    ("name", "value", "event_type"),
    [
        ("watch_fields", ["status"], "DB_INSERT"),
        ("payload_fields", ["status"], "order_placed"),
        ("path_pattern", "*.png", "DB_INSERT"),
        ("cron_expression", "* * * * *", "order_placed"),
    ],
)
def test_a_field_its_type_does_not_use_is_refused_naming_it(name, value, event_type):
    source = "testapp.Order" if event_type.startswith("DB_") else ""
    trigger = Trigger(
        name="t", type=event_type, source=source, url="https://example.com/hook", **{name: value}
    )
    with pytest.raises(ValidationError) as caught:
        validate_trigger(trigger)
    assert name in caught.value.message_dict
    assert "only appl" in caught.value.message_dict[name][0]


@pytest.mark.django_db
def test_from_trigger_reads_what_the_index_reads():
    trigger = TriggerFactory(
        name="ordered",
        type="DB_UPDATE",
        source="testapp.Order",
        watch_fields=["status"],
        filter={"new.status": "paid"},
        delay_s=2.5,
        ordering_key="new.customer_id",
        send_actor=False,
    )
    [indexed] = load_index().find("DB_UPDATE", "testapp.Order")
    assert TriggerSpec.from_trigger(trigger) == indexed
    assert indexed.watch_fields == ("status",)
    assert indexed.ordering_key == "new.customer_id"
    test_spec = TriggerSpec.from_trigger(trigger, delay_s=0.0, ordering_key="")
    assert (test_spec.delay_s, test_spec.ordering_key, test_spec.id) == (0.0, "", trigger.pk)


def test_the_trigger_page_shows_rows_by_kind_as_declared():
    from mission_control.admin.triggers import TriggerAdminForm

    shown = json.loads(TriggerAdminForm().fields["kind"].widget.attrs["data-field-kinds"])
    assert shown["watch_fields"] == ["DB_UPDATE"]
    assert shown["send_actor"] == ["DB_INSERT", "DB_UPDATE", "DB_DELETE"]
    assert shown["path_pattern"] == ["FILE_CREATE", "FILE_DELETE"]
    schedule = fields.group("schedule")
    for name in (*schedule.fields, "next_runs"):  # the group's fields and its display
        assert shown[name] == ["CRON"], name
    assert "url" not in shown  # every kind uses the webhook
