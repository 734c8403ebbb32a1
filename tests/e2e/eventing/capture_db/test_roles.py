"""The trust boundary of database capture, with real PostgreSQL roles.

Another program's role (a reporting job, a psql session) writes a captured table with rights on
that table only: its writes are captured, it cannot forge a capture, and no function of its own
is ever run by the application, even with CREATE on a schema on everybody's search path.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from django.db import connection

from eventing.capture import database as capture_db
from eventing.models import EventCapture, EventLog
from tests.factories import TriggerFactory
from tests.processes import database_url
from tests.support.capture_db import POSTGRES_ONLY
from tests.testapp.models import Order

pytestmark = [POSTGRES_ONLY, pytest.mark.usefixtures("committed_database_mode")]

# Stands in for a built-in: pg_catalog has only to_jsonb(anyelement), so to_jsonb(text) in a
# schema on the caller's path wins over it for a text argument. It records who ran it.
HIJACK = """
CREATE TABLE public.hijacked (who text);
GRANT INSERT ON public.hijacked TO PUBLIC;
CREATE FUNCTION public.to_jsonb(text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.hijacked VALUES (current_user);
  RETURN pg_catalog.to_jsonb($1::varchar);
END $$;
"""


def run_as(role: str, sql: str) -> subprocess.CompletedProcess:
    """One psql session of `role` running `sql`; its result, failed or not."""
    url = database_url().replace("postgres://postgres@", f"postgres://{role}@", 1)
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def writer(committed_database_mode):
    """A login role that may write testapp_order and nothing else of ours (dropped after)."""
    role = f"writer_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role}" LOGIN')
        cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        cursor.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON testapp_order TO "{role}"')
        cursor.execute(f'GRANT USAGE ON SEQUENCE testapp_order_id_seq TO "{role}"')
    yield role
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS public.hijacked")
        cursor.execute("DROP FUNCTION IF EXISTS public.to_jsonb(text)")
        cursor.execute(f'DROP OWNED BY "{role}"')
        cursor.execute(f'DROP ROLE "{role}"')


@pytest.fixture
def order_triggers(committed_database_mode):
    for kind in ("DB_INSERT", "DB_UPDATE", "DB_DELETE"):
        TriggerFactory(name=f"order_{kind.lower()}", type=kind, source="testapp.Order")


def order_events() -> list[tuple[str, dict]]:
    capture_db.expand_all()  # as the listener does, as the application's role
    rows = EventLog.objects.filter(source="testapp.Order").order_by("created_at", "id")
    return [(row.type, row.payload) for row in rows]


@pytest.mark.usefixtures("order_triggers")
def test_a_role_with_rights_on_one_table_only_has_its_writes_captured(writer):
    result = run_as(
        writer,
        "SET eventing.actor = 'report-job'; "
        "INSERT INTO testapp_order (status, total, quantity, note, attachment) "
        "VALUES ('from-psql', 1, 1, '', ''); "
        "UPDATE testapp_order SET status = 'edited' WHERE status = 'from-psql'; "
        "DELETE FROM testapp_order WHERE status = 'edited';",
    )
    assert result.returncode == 0, result.stderr

    events = order_events()
    assert [kind for kind, _ in events] == ["DB_INSERT", "DB_UPDATE", "DB_DELETE"]
    assert {payload["actor"] for _, payload in events} == {"report-job"}
    assert events[1][1]["changed"] == ["status"]


def test_the_role_cannot_forge_a_capture_nor_run_the_expansion(writer):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    capture_db.sync()
    forged = run_as(
        writer,
        'INSERT INTO event_captures (schema, "table", kind, expander, trigger_ids, '
        "created_at, actor, new_rows) VALUES ('public', 'testapp_order', 'insert', "
        "'eventing_capture_expand_insert_testapp_order', '[1]', now(), 'forged', '[{\"id\": 1}]')",
    )
    assert forged.returncode != 0
    assert "permission denied for table event_captures" in forged.stderr
    expanding = run_as(writer, "SELECT * FROM event_captures_expand(10, NULL, NULL)")
    assert "permission denied for function event_captures_expand" in expanding.stderr
    # A row value needs no privilege on the table to build: the expander itself is closed.
    direct = run_as(
        writer,
        "SELECT eventing_capture_expand_insert_testapp_order("
        "ROW(1, 'public', 'testapp_order', 'insert', 'x', '[1]', now(), 'forged', NULL, "
        "'[{\"id\": 1}]')::event_captures)",
    )
    assert "permission denied for function eventing_capture_expand_insert" in direct.stderr
    assert not EventCapture.objects.exists()
    assert not EventLog.objects.exists()


@pytest.mark.usefixtures("order_triggers")
def test_a_role_with_create_on_a_schema_on_the_path_cannot_hijack_a_function(writer):
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT CREATE ON SCHEMA public TO "{writer}"')
    planted = run_as(writer, HIJACK)
    assert planted.returncode == 0, planted.stderr
    result = run_as(
        writer,
        "INSERT INTO testapp_order (status, total, quantity, note, attachment, placed_at) "
        "VALUES ('from-psql', 1, 99999999999999999, '', '', '2026-01-02 03:04:05+00')",
    )
    assert result.returncode == 0, result.stderr
    Order.objects.create(status="from-django", quantity=10**17)

    events = order_events()
    assert [payload["new"]["status"] for _, payload in events] == ["from-psql", "from-django"]
    # Rendered by pg_catalog's to_jsonb: big integers as strings, datetimes as isoformat.
    assert events[0][1]["new"]["quantity"] == "99999999999999999"
    assert events[0][1]["new"]["placed_at"] == "2026-01-02T03:04:05+00:00"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.hijacked")
        assert cursor.fetchone()[0] == 0


@pytest.mark.usefixtures("order_triggers")
def test_the_expander_comes_from_the_catalog_never_from_the_capture_row(writer):
    """Even a capture row naming another function (written by the application's own role)
    is expanded by the table's expander, found from its table and kind."""
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT CREATE ON SCHEMA public TO "{writer}"')
    planted = run_as(
        writer,
        "CREATE TABLE public.hijacked (who text); GRANT INSERT ON public.hijacked TO PUBLIC; "
        "CREATE FUNCTION public.not_an_expander(c event_captures) RETURNS uuid "
        "LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.hijacked VALUES (current_user); "
        "RETURN NULL; END $$;",
    )
    assert planted.returncode == 0, planted.stderr
    order = Order.objects.create(status="real")
    EventCapture.objects.update(expander="not_an_expander")

    events = order_events()
    assert [(kind, payload["pk"]) for kind, payload in events] == [("DB_INSERT", order.pk)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.hijacked")
        assert cursor.fetchone()[0] == 0


def test_public_holds_no_privilege_on_the_functions_or_the_capture_table():
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    capture_db.sync()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, p.prosecdef, p.proconfig, "
            "has_function_privilege('public', p.oid, 'EXECUTE') FROM pg_proc p "
            "WHERE p.proname LIKE 'eventing\\_capture\\_%%' OR p.proname = 'event_captures_expand'"
        )
        functions = {name: (definer, config, public) for name, definer, config, public in cursor}
        cursor.execute(
            "SELECT count(*) FROM information_schema.role_table_grants "
            "WHERE grantee = 'PUBLIC' AND table_name = 'event_captures'"
        )
        table_grants = cursor.fetchone()[0]
    assert set(functions) == {
        "event_captures_expand",
        "eventing_capture_update_testapp_order",
        "eventing_capture_expand_update_testapp_order",
    }
    for name, (definer, config, public) in functions.items():
        assert "search_path=pg_catalog, pg_temp" in config, name
        assert not public, name
        # Only the trigger function runs as its owner: the others run as the listener.
        assert definer == (name == "eventing_capture_update_testapp_order"), name
    assert table_grants == 0
