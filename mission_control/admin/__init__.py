"""Model admins of Mission Control, registered on its site (autodiscovered by Django)."""

from . import events, invocations, triggers  # noqa: F401 - importing registers the admins
