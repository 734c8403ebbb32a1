"""Migration operations that build and drop indexes without blocking writes on PostgreSQL.

A plain CREATE INDEX holds a SHARE lock on its table while it builds: on a large event table
inserts wait for the whole build (12 s at 1M rows for the payload GIN index). CONCURRENTLY lets
writes go on; it cannot run in a transaction, so a migration using these sets `atomic = False`.
On other databases (SQLite) they do what the plain operation does.
"""

from __future__ import annotations

import re

from django.db import NotSupportedError, migrations
from django.db.migrations.operations.base import Operation
from django.db.models import Index


def is_postgresql(schema_editor) -> bool:
    """Whether the migration runs on PostgreSQL (the only database with CONCURRENTLY here)."""
    return schema_editor.connection.vendor == "postgresql"


def ensure_outside_transaction(schema_editor, operation: Operation) -> None:
    """Refuse to run inside a transaction, where PostgreSQL refuses CONCURRENTLY anyway."""
    if schema_editor.connection.in_atomic_block:
        raise NotSupportedError(
            f"{operation.describe()} cannot run inside a transaction: set atomic = False on "
            "its migration."
        )


def drop_invalid_index(schema_editor, name: str) -> None:
    """Drop an index left INVALID by an interrupted CONCURRENTLY build, so it is built again."""
    if schema_editor.collect_sql:
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_table_is_visible(c.oid) AND NOT i.indisvalid",
            [name],
        )
        invalid = cursor.fetchone() is not None
    if invalid:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")


def partitions_of(schema_editor, table: str) -> list[str] | None:
    """The partitions of `table` when it is partitioned (eventing_partitions), else None."""
    if schema_editor.collect_sql:
        return None
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
        if not row or row[0] != "p":
            return None
        cursor.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(%s)",
            [table],
        )
        return [name for (name,) in cursor.fetchall()]


def concurrently(sql: str) -> str:
    """`sql` (CREATE [UNIQUE] INDEX …) with CONCURRENTLY."""
    return re.sub(r"^CREATE (UNIQUE )?INDEX", r"CREATE \1INDEX CONCURRENTLY", sql, count=1)


def create_index_concurrently(schema_editor, table: str, name: str, sql: str) -> None:
    """Run `sql` (a CREATE INDEX naming `name` ON `table`, without CONCURRENTLY) concurrently.

    PostgreSQL cannot build an index on a partitioned table concurrently: there the index is
    made on the parent alone (instant), built concurrently on each partition, and attached.
    """
    qn = schema_editor.quote_name
    parts = partitions_of(schema_editor, table)
    if parts is None:
        schema_editor.execute(concurrently(sql))
        return
    on_table = f" ON {qn(table)} "
    schema_editor.execute(sql.replace(on_table, f" ON ONLY {qn(table)} ", 1))
    for part in parts:
        part_index = f"{part[:40]}_{name[:20]}"
        drop_invalid_index(schema_editor, part_index)
        part_sql = sql.replace(qn(name), qn(part_index), 1).replace(on_table, f" ON {qn(part)} ", 1)
        schema_editor.execute(concurrently(part_sql))
        schema_editor.execute(f"ALTER INDEX {qn(name)} ATTACH PARTITION {qn(part_index)}")


class AddIndexConcurrently(migrations.AddIndex):
    """AddIndex built with CREATE INDEX CONCURRENTLY on PostgreSQL; a plain AddIndex elsewhere."""

    atomic = False

    def describe(self) -> str:
        return f"Create index {self.index.name} on {self.model_name} (concurrently on PostgreSQL)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not is_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        ensure_outside_transaction(schema_editor, self)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            drop_invalid_index(schema_editor, self.index.name)
            sql = str(self.index.create_sql(model, schema_editor))
            create_index_concurrently(schema_editor, model._meta.db_table, self.index.name, sql)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not is_postgresql(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        ensure_outside_transaction(schema_editor, self)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class CreatePostgresIndexConcurrently(Operation):
    """A PostgreSQL-only index outside the model state (e.g. GIN with an operator class),
    built concurrently; IF NOT EXISTS, so an index made by hand under the same name is kept."""

    atomic = False
    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str, name: str, definition: str):
        self.model_name = model_name
        self.name = name
        self.definition = definition

    def deconstruct(self):
        kwargs = {"model_name": self.model_name, "name": self.name, "definition": self.definition}
        return self.__class__.__qualname__, [], kwargs

    def describe(self) -> str:
        return f"Create index {self.name} on {self.model_name} concurrently (PostgreSQL only)"

    def state_forwards(self, app_label, state):
        pass

    def allowed(self, app_label, schema_editor, state) -> bool:
        """PostgreSQL, and the database the router sends this model to."""
        model = state.apps.get_model(app_label, self.model_name)
        return is_postgresql(schema_editor) and self.allow_migrate_model(
            schema_editor.connection.alias, model
        )

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not self.allowed(app_label, schema_editor, to_state):
            return
        ensure_outside_transaction(schema_editor, self)
        model = to_state.apps.get_model(app_label, self.model_name)
        drop_invalid_index(schema_editor, self.name)
        table = model._meta.db_table
        qn = schema_editor.quote_name
        if partitions_of(schema_editor, table) is None:
            schema_editor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {qn(self.name)} "
                f"ON {qn(table)} {self.definition}"
            )
            return
        sql = f"CREATE INDEX {qn(self.name)} ON {qn(table)} {self.definition}"
        create_index_concurrently(schema_editor, table, self.name, sql)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not self.allowed(app_label, schema_editor, from_state):
            return
        ensure_outside_transaction(schema_editor, self)
        schema_editor.execute(
            f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.name)}"
        )


class AlterFieldDropIndexConcurrently(migrations.AlterField):
    """AlterField whose only database change is dropping the field's own index (db_index
    True → False): DROP INDEX CONCURRENTLY on PostgreSQL, a plain AlterField elsewhere."""

    atomic = False

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not is_postgresql(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        ensure_outside_transaction(schema_editor, self)
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        column = model._meta.get_field(self.name).column
        names = schema_editor._constraint_names(
            model, [column], index=True, type_=Index.suffix, primary_key=False, unique=False
        )
        # The name Django gave it, for `sqlmigrate` (which cannot look the index up).
        names = names or [schema_editor._create_index_name(model._meta.db_table, [column])]
        for name in names:
            schema_editor.execute(
                f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not is_postgresql(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        ensure_outside_transaction(schema_editor, self)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            field = model._meta.get_field(self.name)
            index = Index(
                fields=[field.name],
                name=schema_editor._create_index_name(model._meta.db_table, [field.column]),
            )
            schema_editor.add_index(model, index, concurrently=True)
