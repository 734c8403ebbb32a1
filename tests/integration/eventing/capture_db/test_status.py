"""Keeping trigger functions in step: status, sync, drop, system checks, migrations, the admin."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models.signals import post_migrate, pre_migrate
from django.urls import reverse

from eventing import checks
from eventing.capture import database as capture_db
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY, payloads
from tests.testapp.models import Order

pytestmark = [POSTGRES_ONLY, pytest.mark.django_db]


def states() -> dict[tuple[str, str], str]:
    return {(line.table, line.kind): line.state for line in capture_db.capture_status()}


def status_output() -> tuple[str, bool]:
    """What `eventing_capture status` prints, and whether it exited 0."""
    out = io.StringIO()
    try:
        call_command("eventing_capture", "status", stdout=out)
    except CommandError:
        return out.getvalue(), False
    return out.getvalue(), True


def warnings() -> list[str]:
    return [w.msg for w in checks.check_capture_functions() if w.id == "eventing.W006"]


def test_status_sync_and_drop(database_mode, settings):
    TriggerFactory(name="ins", type="DB_INSERT", source="testapp.Order")
    TriggerFactory(name="upd", type="DB_UPDATE", source="testapp.Order")
    assert states() == {("testapp_order", "insert"): "ok", ("testapp_order", "update"): "ok"}
    text, ok = status_output()
    assert ok
    assert "eventing_capture_insert_testapp_order" in text
    assert "triggers: upd" in text
    assert warnings() == []

    call_command("eventing_capture", "drop", stdout=io.StringIO())
    assert set(states().values()) == {"missing"}
    text, ok = status_output()
    assert not ok
    assert "missing" in text
    assert len(warnings()) == 2
    Order.objects.create()
    # No trigger function: the signal receivers record the write instead, once.
    assert len(payloads("DB_INSERT")) == 1

    out = io.StringIO()
    call_command("eventing_capture", "sync", stdout=out)
    assert "installed eventing_capture_insert_testapp_order (ins)" in out.getvalue()
    assert set(states().values()) == {"ok"}
    Order.objects.create()
    assert len(payloads("DB_INSERT")) == 2

    # What the functions bake in changed outside any Trigger save: they are stale until sync.
    settings.EVENTING = {**settings.EVENTING, "EXCLUDE_FIELDS": ["note"]}
    assert set(states().values()) == {"stale"}
    assert len(warnings()) == 2
    capture_db.sync()
    assert set(states().values()) == {"ok"}
    Order.objects.create(note="hidden now")
    assert "note" not in payloads("DB_INSERT")[-1]["new"]


def test_sync_is_a_no_op_when_in_step(database_mode):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    assert capture_db.sync() == []


def test_functions_left_in_signal_mode_are_reported_and_dropped(database_mode, settings):
    TriggerFactory(name="ins", type="DB_INSERT", source="testapp.Order")
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "signals"}
    (line,) = capture_db.capture_status()
    assert line.state == "orphan"
    assert "recorded twice" in line.detail
    assert len(warnings()) == 1
    assert capture_db.sync() == [
        "dropped trigger eventing_capture_insert on testapp_order",
        "dropped eventing_capture_insert_testapp_order",
    ]
    assert capture_db.capture_status() == []
    Order.objects.create()
    assert len(payloads("DB_INSERT")) == 1  # by the signals alone


def test_a_renamed_table_is_reported_and_fixed_by_sync(database_mode, monkeypatch):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    # What a migration changing Meta.db_table does: the table is renamed (our trigger follows
    # it), and the new code names the new table.
    with connection.schema_editor() as editor:
        editor.alter_db_table(Order, "testapp_order", "testapp_order_renamed")
    monkeypatch.setattr(Order._meta, "db_table", "testapp_order_renamed")
    Order.objects.create(status="during")  # writes keep working
    assert payloads("DB_INSERT")[-1]["new"]["status"] == "during"
    (line,) = capture_db.capture_status()
    assert (line.table, line.state) == ("testapp_order_renamed", "stale")
    assert "renamed from testapp_order" in line.detail

    capture_db.sync()
    assert states() == {("testapp_order_renamed", "insert"): "ok"}
    Order.objects.create(status="after")
    assert payloads("DB_INSERT")[-1]["table"] == "testapp_order_renamed"
    assert not any(name.endswith("_testapp_order") for _, name in read_functions())


def read_functions():
    return capture_db.read_catalog(connection).functions


@pytest.fixture
def without_note_field():
    """The Order model as code that dropped its `note` field would define it."""
    meta = Order._meta
    field = meta.get_field("note")
    position = meta.local_fields.index(field)

    def drop_field() -> None:
        meta.local_fields.remove(field)
        meta._expire_cache()

    yield drop_field
    if field not in meta.local_fields:
        meta.local_fields.insert(position, field)
        meta._expire_cache()


def migrate_signal(signal) -> None:
    """What `manage.py migrate` sends Eventing before (pre_migrate) or after (post_migrate)."""
    config = apps.get_app_config("eventing")
    signal.send(
        sender=config, app_config=config, verbosity=0, interactive=False, using="default", apps=apps
    )


def test_a_column_dropped_by_a_migration_breaks_no_write(database_mode, without_note_field):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    migrate_signal(pre_migrate)
    # The migration drops the column; a data migration (or another program) writes meanwhile.
    with connection.schema_editor() as editor:
        editor.remove_field(Order, Order._meta.get_field("note"))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO testapp_order (status, total, quantity, attachment) "
            "VALUES ('raw', 1, 1, '')"
        )
    assert payloads("DB_INSERT")[-1]["new"]["note"] is None
    (line,) = capture_db.capture_status()
    assert line.state == "stale"
    assert "columns missing in the table: note" in line.detail

    without_note_field()  # the code that goes with the migration
    migrate_signal(post_migrate)
    assert states() == {("testapp_order", "insert"): "ok"}
    Order.objects.create(status="after")
    assert "note" not in payloads("DB_INSERT")[-1]["new"]


def test_a_column_dropped_outside_migrations_is_reported_and_fixed_by_sync(
    database_mode, without_note_field
):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    with connection.schema_editor() as editor:
        editor.remove_field(Order, Order._meta.get_field("note"))
    (line,) = capture_db.capture_status()
    assert line.state == "stale"
    assert "columns missing in the table: note" in line.detail
    assert any("columns missing" in message for message in warnings())
    without_note_field()
    out = io.StringIO()
    call_command("eventing_capture", "sync", stdout=out)
    assert "replaced eventing_capture_insert_testapp_order" in out.getvalue()
    Order.objects.create(status="after")
    assert "note" not in payloads("DB_INSERT")[-1]["new"]


def test_trigger_page_shows_the_capture_status(database_mode, admin_client):
    trigger = TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    url = reverse("mission_control:triggers_trigger_change", args=[trigger.pk])
    page = admin_client.get(url).content.decode()
    assert "eventing_capture_update_testapp_order on testapp_order: ok." in page
    capture_db.drop()
    page = admin_client.get(url).content.decode()
    assert "missing (no trigger on the table)" in page
    assert "eventing_capture sync" in page


def test_status_counts_the_captures_waiting(database_mode):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    Order.objects.create()
    text, ok = status_output()
    assert ok
    assert "captures waiting to become events: 1 (oldest" in text
    capture_db.expand_all()
    text, ok = status_output()
    assert "captures waiting to become events: 0" in text
