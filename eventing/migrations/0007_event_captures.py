"""event_captures: what trigger functions capture, until the listener turns it into events."""

from django.db import migrations, models


def install(apps, schema_editor):
    """Rows stored uncompressed (a 10,000-row statement's are megabytes: compressing them would
    cost the writer), and the function the listener expands captures with."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE event_captures ALTER old_rows SET STORAGE EXTERNAL, "
            "ALTER new_rows SET STORAGE EXTERNAL"
        )
        # The versioned definition `eventing_capture sync` installs too (0009 replaces an
        # older one installed by this migration's first form).
        from eventing.capture.database import expand_function

        expand_function.install(schema_editor.connection, force=True)


def uninstall(apps, schema_editor):
    """Drop the expanding function before its table goes."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS event_captures_expand(integer, timestamptz, timestamptz)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("eventing", "0006_ordering_throttle"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventCapture",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "schema",
                    models.CharField(
                        help_text="Schema of the table and its functions.", max_length=63
                    ),
                ),
                (
                    "table",
                    models.CharField(help_text="The table the statement wrote.", max_length=63),
                ),
                ("kind", models.CharField(help_text="insert, update or delete.", max_length=6)),
                (
                    "expander",
                    models.CharField(
                        help_text=(
                            "The function that turns this capture into event rows "
                            "(eventing_capture_x…)."
                        ),
                        max_length=63,
                    ),
                ),
                (
                    "trigger_ids",
                    models.JSONField(
                        help_text="Triggers enabled when the statement ran: only these get an event."
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        help_text="When the statement ran (the events' created_at)."
                    ),
                ),
                (
                    "actor",
                    models.TextField(
                        blank=True,
                        help_text=(
                            "Who made the change (the writing session's eventing.actor), "
                            "if known."
                        ),
                        null=True,
                    ),
                ),
                (
                    "old_rows",
                    models.TextField(
                        blank=True,
                        help_text="The rows before the statement, as a JSON array.",
                        null=True,
                    ),
                ),
                (
                    "new_rows",
                    models.TextField(
                        blank=True,
                        help_text="The rows after the statement, as a JSON array.",
                        null=True,
                    ),
                ),
            ],
            options={
                "verbose_name": "event capture",
                "verbose_name_plural": "event captures",
                "db_table": "event_captures",
            },
        ),
        migrations.RunPython(install, uninstall),
    ]
