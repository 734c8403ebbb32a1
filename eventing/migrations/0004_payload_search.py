"""A GIN index (jsonb_path_ops) on event_logs.payload: payload search by JSON containment.

PostgreSQL only: SQLite's JSON1 has no index over arbitrary paths, so there a payload filter
reads the rows the other filters leave. Built with CREATE INDEX CONCURRENTLY, so writes to
event_logs go on during the build; an index already made by hand under the same name is kept.
"""

from django.db import migrations

from eventing.migration_operations import CreatePostgresIndexConcurrently


class Migration(migrations.Migration):
    # CONCURRENTLY cannot run inside a transaction. Databases that applied this migration when
    # it built the index in one are unaffected: the index and its name are the same.
    atomic = False

    dependencies = [
        ("eventing", "0003_invocation_succeeded"),
    ]

    operations = [
        CreatePostgresIndexConcurrently(
            model_name="eventlog",
            name="event_logs_payload",
            definition="USING gin (payload jsonb_path_ops)",
        ),
    ]
