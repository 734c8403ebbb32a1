"""The API and `eventing_triggers` expose ordering_key, rate_limit and max_in_flight, validated
as Mission Control validates them."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from tests.factories import TriggerFactory
from tests.support.api_fixtures import TRIGGERS_URL
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def new_trigger(**fields) -> dict:
    return {"name": "keyed", "type": "order_changed", "url": "https://h.example.com/", **fields}


def test_a_trigger_is_created_with_ordering_and_limits(staff):
    body = new_trigger(ordering_key="new.customer_id", rate_limit=50, max_in_flight=4)

    response = staff.post(TRIGGERS_URL, body, format="json")

    assert response.status_code == 201, response.json()
    assert {k: response.json()[k] for k in ("ordering_key", "rate_limit", "max_in_flight")} == {
        "ordering_key": "new.customer_id",
        "rate_limit": 50.0,
        "max_in_flight": 4,
    }
    stored = Trigger.objects.get(name="keyed")
    assert (stored.ordering_key, stored.rate_limit, stored.max_in_flight) == (
        "new.customer_id",
        50.0,
        4,
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"ordering_key": "new..id"}, "ordering_key"),
        ({"ordering_key": "new customer"}, "ordering_key"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"max_in_flight": 0}, "max_in_flight"),
    ],
)
def test_bad_values_are_refused_naming_the_field(staff, fields, named):
    response = staff.post(TRIGGERS_URL, new_trigger(**fields), format="json")
    assert response.status_code == 400
    assert named in json.dumps(response.json())
    assert not Trigger.objects.filter(name="keyed").exists()


def test_export_and_import_carry_the_fields(tmp_path):
    TriggerFactory(name="keyed", type="order_changed", ordering_key="pk", rate_limit=2.5)
    path = tmp_path / "triggers.json"
    call_command("eventing_triggers", "export", "-o", str(path), stdout=StringIO())
    exported = json.loads(path.read_text())["triggers"][0]
    assert (exported["ordering_key"], exported["rate_limit"], exported["max_in_flight"]) == (
        "pk",
        2.5,
        None,
    )

    Trigger.objects.all().delete()
    call_command("eventing_triggers", "import", str(path), stdout=StringIO())
    restored = Trigger.objects.get(name="keyed")
    assert (restored.ordering_key, restored.rate_limit, restored.max_in_flight) == ("pk", 2.5, None)
