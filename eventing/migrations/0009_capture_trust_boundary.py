"""event_captures_expand() as eventing.capture.database.expand_function defines it now.

The expander is found in the catalog (never named by the capture row), the search_path is
pinned, eventing's tables are named by schema, and PUBLIC holds no privilege on the function
or on event_captures. `eventing_capture sync` installs the same definition.
"""

from django.db import migrations


def install(apps, schema_editor):
    """The current definition (replaces the one 0007 installed)."""
    if schema_editor.connection.vendor == "postgresql":
        from eventing.capture.database import expand_function

        expand_function.install(schema_editor.connection, force=True)


class Migration(migrations.Migration):
    dependencies = [
        ("eventing", "0008_follow_up_budget"),
    ]

    operations = [
        migrations.RunPython(install, migrations.RunPython.noop),
    ]
