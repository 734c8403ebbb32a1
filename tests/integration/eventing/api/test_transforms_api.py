"""Request transforms over the API and through `eventing_triggers export|import`."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from tests.factories import TriggerFactory
from tests.support.api_fixtures import TRIGGERS_URL
from triggers.models import Trigger

pytestmark = pytest.mark.django_db

TRANSFORM = {
    "transform_method": "PATCH",
    "transform_url": "{{ base_url }}/orders/{{ data.id }}",
    "transform_query": {"kind": "{{ type }}"},
    "transform_headers": {"X-Order": "{{ data.id }}"},
    "transform_body": '{"id": {{ data.id }}}',
}


def test_api_creates_reads_and_refuses_transforms_naming_the_field(staff):
    hook = {"name": "shaped", "type": "order_placed", "url": "https://h.example.com", **TRANSFORM}
    created = staff.post(TRIGGERS_URL, hook, format="json")
    assert created.status_code == 201, created.json()
    read = staff.get(f"{TRIGGERS_URL}shaped/").json()
    assert {key: read[key] for key in TRANSFORM} == TRANSFORM

    broken = staff.patch(
        f"{TRIGGERS_URL}shaped/", {"transform_body": '{"id": {{ data.id }'}, format="json"
    )
    assert broken.status_code == 400
    assert "transform_body" in json.dumps(broken.json())
    assert Trigger.objects.get(name="shaped").transform_body == TRANSFORM["transform_body"]


def test_export_and_import_carry_the_transform(tmp_path):
    TriggerFactory(name="shaped", **TRANSFORM)
    path = tmp_path / "triggers.json"
    call_command("eventing_triggers", "export", "-o", str(path), stdout=StringIO())
    [item] = json.loads(path.read_text())["triggers"]
    assert {key: item[key] for key in TRANSFORM} == TRANSFORM

    Trigger.objects.all().delete()
    call_command("eventing_triggers", "import", str(path), stdout=StringIO())
    trigger = Trigger.objects.get(name="shaped")
    assert {key: getattr(trigger, key) for key in TRANSFORM} == TRANSFORM
