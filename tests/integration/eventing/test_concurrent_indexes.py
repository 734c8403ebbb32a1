"""Every index eventing's migrations build or drop on an existing table is CONCURRENTLY on
PostgreSQL, so `migrate` never blocks writes to the event tables while it reads them all."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.db.migrations import AlterField, RunPython
from django.db.migrations.loader import MigrationLoader

from eventing.migration_operations import AlterFieldDropIndexConcurrently

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="CONCURRENTLY is PostgreSQL's"),
    # CONCURRENTLY refuses to run in a transaction, so the test may not hold one either.
    pytest.mark.django_db(transaction=True),
]

INDEX_STATEMENT = re.compile(
    r"^\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX\s+\w+)(?!\s+CONCURRENTLY)\b",
    re.IGNORECASE,
)
# Unique and primary-key constraints added to an existing table build their index under lock.
CONSTRAINT_INDEX = re.compile(
    r"^\s*ALTER\s+TABLE\s+\"?(\w+)\"?\s+ADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:UNIQUE|PRIMARY\s+KEY)",
    re.IGNORECASE,
)
ON_TABLE = re.compile(r"\sON\s+(?:ONLY\s+)?\"?(\w+)\"?", re.IGNORECASE)
CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+\"?(\w+)\"?", re.IGNORECASE)


def eventing_migrations():
    """eventing's migrations in the order they apply, with the loader that read them."""
    loader = MigrationLoader(connection)
    plan = loader.graph.forwards_plan(max(loader.graph.leaf_nodes("eventing")))
    return loader, [loader.graph.nodes[key] for key in plan if key[0] == "eventing"]


def statements_of(loader, migration) -> list[str]:
    """The SQL each operation of `migration` runs on PostgreSQL (RunPython's too, rolled back)."""
    state = loader.project_state((migration.app_label, migration.name), at_end=False)
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for operation in migration.operations:
            new_state = state.clone()
            operation.state_forwards(migration.app_label, new_state)
            if isinstance(operation, RunPython):
                # Its queries run for real (data migrations); its schema statements collect.
                with transaction.atomic():
                    operation.code(state.apps, editor)
                    transaction.set_rollback(True)
            else:
                operation.database_forwards(migration.app_label, editor, state, new_state)
            state = new_state
    return editor.collected_sql


def altered_indexes(loader, migration) -> list[str]:
    """Plain AlterFields adding or dropping a field's index (the SQL depends on the live
    schema, so collected SQL alone would miss them)."""
    state = loader.project_state((migration.app_label, migration.name), at_end=False)
    found = []
    for operation in migration.operations:
        if isinstance(operation, AlterField) and not isinstance(
            operation, AlterFieldDropIndexConcurrently
        ):
            old = state.models[migration.app_label, operation.model_name_lower].fields[
                operation.name
            ]
            new = operation.field
            if (old.db_index, old.unique) != (new.db_index, new.unique):
                found.append(f"{operation.describe()} (index changes, not concurrently)")
        new_state = state.clone()
        operation.state_forwards(migration.app_label, new_state)
        state = new_state
    return found


def blocking_index_statements(statements: list[str]) -> list[str]:
    """Index builds/drops without CONCURRENTLY on a table not created by the same migration."""
    created = {m.group(1) for sql in statements if (m := CREATE_TABLE.match(sql))}
    found = []
    for sql in statements:
        constraint = CONSTRAINT_INDEX.match(sql)
        if constraint and constraint.group(1) not in created:
            found.append(sql)
        elif INDEX_STATEMENT.match(sql):
            table = ON_TABLE.search(sql)
            # A DROP INDEX names no table: it locks one that exists, so it always counts.
            if table is None or table.group(1) not in created:
                found.append(sql)
    return found


def test_every_index_on_an_existing_event_table_is_built_concurrently():
    loader, migrations = eventing_migrations()
    assert len(migrations) >= 7  # the test read eventing's migrations, not an empty plan
    blocking = {}
    for migration in migrations:
        found = blocking_index_statements(statements_of(loader, migration))
        found += altered_indexes(loader, migration)
        if found:
            blocking[migration.name] = found
    assert blocking == {}


def test_a_migration_building_concurrently_is_not_atomic():
    loader, migrations = eventing_migrations()
    concurrent = [
        m.name for m in migrations if any("CONCURRENTLY" in sql for sql in statements_of(loader, m))
    ]
    assert "0004_payload_search" in concurrent
    assert [name for name in concurrent if loader.graph.nodes["eventing", name].atomic] == []


def test_the_payload_index_is_built_concurrently_with_its_operator_class():
    loader, _ = eventing_migrations()
    statements = statements_of(loader, loader.graph.nodes["eventing", "0004_payload_search"])
    assert statements == [
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "event_logs_payload" ON "event_logs" '
        "USING gin (payload jsonb_path_ops);"
    ]
