"""The triggers-changed service: Mission Control, the API and the import keep capture in step;
a Trigger written through the ORM alone runs no DDL, and status and W006 report the drift."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from eventing.capture import database as capture_db
from tests.factories import TriggerFactory
from tests.integration.eventing.capture_db.test_status import status_output, warnings
from tests.integration.mission_control.test_forms import BASE
from tests.support.api_fixtures import TRIGGERS_URL, bearer, make_token
from tests.support.capture_db import POSTGRES_ONLY
from triggers.models import Trigger

pytestmark = [POSTGRES_ONLY, pytest.mark.django_db]

DDL = re.compile(r"^\s*(CREATE|DROP|ALTER|COMMENT ON)\b", re.IGNORECASE)


def capture_triggers(table: str = "testapp_order") -> set[str]:
    """Names of eventing's capture triggers attached to `table`, read from the catalog."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
            "AND tgname LIKE %s",
            [table, f"{capture_db.PREFIX}%"],
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.fixture
def api(db) -> APIClient:
    """An API client of a superuser (every trigger permission)."""
    User.objects.create_superuser("root", password="pw-root-123")
    return bearer(APIClient(), make_token({"sub": "root"}))


def test_mission_control_installs_and_drops_the_function(database_mode, admin_client):
    fields = {"name": "orders_in", "kind": "DB_INSERT", "custom_type": ""}
    fields["source_model"] = "testapp.Order"
    added = admin_client.post(reverse("mission_control:triggers_trigger_add"), {**BASE, **fields})
    assert added.status_code == 302, added.context["adminform"].form.errors
    assert len(capture_triggers()) == 1
    trigger = Trigger.objects.get(name="orders_in")
    changelist = reverse("mission_control:triggers_trigger_changelist")

    admin_client.post(changelist, {"action": "disable", "_selected_action": [trigger.pk]})
    assert capture_triggers() == set()
    admin_client.post(changelist, {"action": "enable", "_selected_action": [trigger.pk]})
    assert len(capture_triggers()) == 1

    delete = reverse("mission_control:triggers_trigger_delete", args=[trigger.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not Trigger.objects.exists()
    assert capture_triggers() == set()


def test_mission_controls_bulk_delete_drops_the_function(database_mode, admin_client):
    trigger = TriggerFactory(type="DB_INSERT", source="testapp.Order")
    assert len(capture_triggers()) == 1
    changelist = reverse("mission_control:triggers_trigger_changelist")
    admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [trigger.pk], "post": "yes"}
    )
    assert not Trigger.objects.exists()
    assert capture_triggers() == set()


def test_the_api_installs_updates_and_drops_the_function(database_mode, api):
    body = {
        "name": "orders_up",
        "type": "DB_UPDATE",
        "source": "testapp.Order",
        "url": "https://h.example.com/",
        "watch_fields": ["status"],
    }
    response = api.post(TRIGGERS_URL, body, format="json")
    assert response.status_code == 201, response.json()
    assert len(capture_triggers()) == 1
    assert warnings() == []

    response = api.patch(f"{TRIGGERS_URL}orders_up/", {"watch_fields": ["total"]}, format="json")
    assert response.status_code == 200, response.json()
    assert warnings() == []  # the function follows the new watch list: not stale
    response = api.patch(f"{TRIGGERS_URL}orders_up/", {"enabled": False}, format="json")
    assert response.status_code == 200, response.json()
    assert capture_triggers() == set()
    api.patch(f"{TRIGGERS_URL}orders_up/", {"enabled": True}, format="json")
    assert len(capture_triggers()) == 1

    assert api.delete(f"{TRIGGERS_URL}orders_up/").status_code == 204
    assert capture_triggers() == set()


def test_the_import_installs_and_drops_the_function(database_mode, tmp_path):
    path = tmp_path / "triggers.json"
    item = {"name": "imported", "type": "DB_INSERT", "source": "testapp.Order"}
    item["url"] = "https://h.example.com/"

    def run_import(*extra: str, **fields) -> None:
        path.write_text(json.dumps({"triggers": [{**item, **fields}]}))
        call_command("eventing_triggers", "import", str(path), *extra, stdout=StringIO())

    run_import("--dry-run")
    assert capture_triggers() == set()
    run_import()
    assert len(capture_triggers()) == 1
    assert warnings() == []
    run_import(enabled=False)
    assert capture_triggers() == set()


def test_a_trigger_written_through_the_orm_runs_no_ddl_and_the_drift_is_reported(database_mode):
    with CaptureQueriesContext(connection) as queries:
        trigger = Trigger.objects.create(
            name="scripted", type="DB_INSERT", source="testapp.Order", url="https://h.example/"
        )
        trigger.filter = {"new.status": "paid"}
        trigger.save()
    assert [q["sql"] for q in queries.captured_queries if DDL.match(q["sql"])] == []
    assert capture_triggers() == set()
    assert any("is missing" in line for line in warnings())
    text, ok = status_output()
    assert not ok
    assert "missing" in text

    capture_db.triggers_changed()
    assert len(capture_triggers()) == 1
    assert warnings() == []

    trigger.filter = {"new.status": "shipped"}
    trigger.save()
    assert any("is stale" in line for line in warnings())
    with CaptureQueriesContext(connection) as queries:
        trigger.delete()
    assert [q["sql"] for q in queries.captured_queries if DDL.match(q["sql"])] == []
    assert len(capture_triggers()) == 1  # left over until synced
    assert any("orphan" in line for line in warnings())
    call_command("eventing_capture", "sync", stdout=StringIO())
    assert capture_triggers() == set()


def test_no_model_signal_of_trigger_reaches_database_capture():
    receivers = [
        receiver
        for signal in (pre_save, post_save, pre_delete, post_delete)
        for group in signal._live_receivers(Trigger)
        for receiver in group
    ]
    assert receivers  # the trigger index is still refreshed by post_save / post_delete
    assert [r for r in receivers if r.__module__.startswith("eventing.capture.database")] == []
