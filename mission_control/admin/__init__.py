"""Model admins of Mission Control, registered on its own site (autodiscovered by Django).

Nothing is added to the project's admin site: its admins opt in to the backfill action with
`mission_control.backfill.SendToDBTriggerMixin`."""

from . import events, invocations, subscriptions, triggers  # noqa: F401 - importing registers the admins
