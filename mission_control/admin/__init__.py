"""Model admins of Mission Control, registered on its site (autodiscovered by Django), and the
"send selected rows to a DB trigger" action on every admin of the project's own admin site."""

from django.contrib import admin as django_admin

from ..backfill import send_to_db_trigger
from . import events, invocations, triggers  # noqa: F401 - importing registers the admins

django_admin.site.add_action(send_to_db_trigger, "eventing_send_to_db_trigger")
