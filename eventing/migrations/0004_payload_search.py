"""A GIN index (jsonb_path_ops) on event_logs.payload: payload search by JSON containment.

PostgreSQL only: SQLite's JSON1 has no index over arbitrary paths, so there a payload filter
reads the rows the other filters leave. On a large table, create the index by hand first with
CREATE INDEX CONCURRENTLY (same name): this migration then finds it and does nothing.
"""

from django.db import migrations

INDEX = "event_logs_payload"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON event_logs USING gin (payload jsonb_path_ops)"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("eventing", "0003_invocation_succeeded"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
