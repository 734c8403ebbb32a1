"""Create the "Eventing operators" group: view everything, redeliver and cancel events."""

from django.db import migrations

GROUP = "Eventing operators"
PERMISSIONS = [
    ("triggers", "view_trigger"),
    ("triggers", "view_eventtype"),
    ("eventing", "view_eventlog"),
    ("eventing", "view_invocationlog"),
    ("eventing", "redeliver_eventlog"),
    ("eventing", "cancel_eventlog"),
]


def create_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations (post_migrate); make sure the
    # ones the group needs exist already on a fresh database.
    for label in ("triggers", "eventing"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, using=schema_editor.connection.alias,
                           apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.using(schema_editor.connection.alias).get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        permission = Permission.objects.using(schema_editor.connection.alias).get(
            content_type__app_label=app_label, codename=codename
        )
        group.permissions.add(permission)


def delete_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name=GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("triggers", "0001_initial"),
        ("eventing", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
