"""Deploys: a renamed watched field fails loudly; an old process keeps a renamed table's trigger;
the first migrate logs no error."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from eventing import checks
from eventing.capture import database as capture_db
from tests.factories import TriggerFactory
from tests.processes import database_url, process_env
from tests.support.capture_db import POSTGRES_ONLY, payloads, psql
from tests.testapp.models import Order
from triggers.models import Trigger

pytestmark = [POSTGRES_ONLY, pytest.mark.django_db]


@pytest.fixture
def status_renamed_to_state():
    """The Order model as code that renamed its `status` field to `state` would define it."""
    field = Order._meta.get_field("status")
    field.name = field.attname = "state"
    Order._meta._expire_cache()
    yield
    field.name = field.attname = "status"
    Order._meta._expire_cache()


def test_a_renamed_watched_field_fails_the_check_and_status_naming_trigger_and_field(
    database_mode, status_renamed_to_state
):
    Trigger.objects.bulk_create(  # saved before the rename: validation saw a `status` field
        [
            TriggerFactory.build(
                name="paid", type="DB_UPDATE", source="testapp.Order", watch_fields=["status"]
            )
        ]
    )
    capture_db.sync()

    errors = checks.check_trigger_fields()
    assert [e.id for e in errors] == ["eventing.E011"]
    assert "trigger 'paid' names field 'status' in watch_fields" in errors[0].msg
    assert "testapp.Order" in errors[0].msg
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("eventing_capture", "status", stdout=out)
    assert "broken" in out.getvalue()
    assert "'status'" in out.getvalue()


def test_the_check_fails_in_signal_mode_too_and_passes_once_the_trigger_is_fixed(
    status_renamed_to_state,
):
    Trigger.objects.bulk_create(
        [
            TriggerFactory.build(
                name="flt", type="DB_INSERT", source="testapp.Order", filter={"new.status": "x"}
            )
        ]
    )
    (error,) = checks.check_trigger_fields()
    assert "names field 'status' in filter" in error.msg
    Trigger.objects.filter(name="flt").update(filter={"new.state": "x"})
    assert checks.check_trigger_fields() == []


def test_a_process_with_old_models_keeps_the_trigger_of_a_table_renamed_since(database_mode):
    """A newer deploy renamed testapp_order and synced; this process's models still name the
    old table. Its sync (any Trigger saved here runs one) must not drop the capture."""
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE testapp_order RENAME TO testapp_order_v2")

    actions = capture_db.sync()
    assert any(line.startswith("kept trigger eventing_capture_insert") for line in actions)
    assert not any("dropped" in line for line in actions)
    TriggerFactory(name="another", type="DB_DELETE", source="testapp.Customer")  # syncs again
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO testapp_order_v2 (status, total, quantity, note, attachment) "
            "VALUES ('after-rename', 1, 1, '', '')"
        )
    assert payloads("DB_INSERT")[-1]["new"]["status"] == "after-rename"
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE testapp_order_v2 RENAME TO testapp_order")


@pytest.mark.slow
def test_a_first_migrate_with_database_capture_logs_no_error():
    """`migrate` on an empty database in database mode: eventing's tables do not exist yet
    when pre_migrate runs, and nothing about that is logged."""
    name = f"first_migrate_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE DATABASE {name}")
    try:
        url = database_url().rsplit("/", 1)[0] + f"/{name}"
        result = subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "1"],
            env=process_env(DATABASE_URL=url, EVENTING_TEST_CAPTURE="database"),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        psql(f"DROP DATABASE IF EXISTS {name}")
    assert result.returncode == 0, result.stderr
    assert "Applying eventing.0009" in result.stdout
    assert "does not exist" not in result.stdout + result.stderr
    assert "not synced" not in result.stdout + result.stderr
