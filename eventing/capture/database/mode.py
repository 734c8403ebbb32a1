"""The capture mode, and which models trigger functions can serve."""

from __future__ import annotations

import hashlib
import logging

from django.core.signals import setting_changed
from django.db import connections, models, router
from django.dispatch import receiver

from eventing.conf import get_settings, settings
from triggers import types
from triggers.validation import INTERNAL_APPS

logger = logging.getLogger(__name__)

logger = logging.getLogger(__name__)

SIGNALS, DATABASE = "signals", "database"
MODES = (SIGNALS, DATABASE)
# The listener LISTENs here. Payloads are empty: PostgreSQL folds a transaction's identical
# notifications into one, so a 100-statement transaction wakes the listener once.
CHANNEL = "eventing_capture"
# Names of our triggers and functions start with this (how the catalog finds them).
PREFIX = "eventing_capture_"
# …and an expander's name continues with this.
EXPAND = "expand_"
KINDS = {types.DB_INSERT: "insert", types.DB_UPDATE: "update", types.DB_DELETE: "delete"}
# Serialises syncs (two trigger edits at once would otherwise race on CREATE OR REPLACE).
SYNC_LOCK_KEY = int.from_bytes(hashlib.sha256(b"eventing.capture.sync").digest()[:8], "big") >> 1


# --- the mode -------------------------------------------------------------------------------


def capture_mode() -> str:
    """EVENTING["CAPTURE"]: "signals" or "database"."""
    return settings.CAPTURE


def database_capture() -> bool:
    """Whether trigger functions capture DB events: CAPTURE = "database" on PostgreSQL.

    On another database the signal receivers keep capturing (system check eventing.E009 says
    why), so a misconfiguration never loses events.
    """
    return settings.CAPTURE == DATABASE and connections[settings.DATABASE].vendor == "postgresql"


def same_database(alias: str, other: str) -> bool:
    """Whether two aliases reach the same database (same engine, server and name)."""
    if alias == other:
        return True
    a, b = connections.settings[alias], connections.settings[other]
    keys = ("ENGINE", "NAME", "HOST", "PORT")
    return all((a.get(k) or "") == (b.get(k) or "") for k in keys)


def unservable_reason(model: type[models.Model]) -> str | None:
    """Why trigger functions cannot capture `model`'s writes, or None when they can."""
    meta = model._meta
    if meta.app_label in INTERNAL_APPS:
        return "Eventing's own tables and Django's bookkeeping are never captured."
    if meta.proxy:
        return (
            f"{meta.label} is a proxy model: a trigger function sees every write to "
            f"{meta.db_table}, not only the proxy's. Name the concrete model "
            f"({meta.concrete_model._meta.label})."
        )
    if meta.parents:
        return (
            f"{meta.label} inherits fields stored in another table (multi-table inheritance); "
            "database capture sees one table at a time."
        )
    if meta.pk.column is None:
        return f"{meta.label} has a composite primary key, which database capture cannot pair."
    alias = router.db_for_write(model)
    if not same_database(alias, settings.DATABASE):
        return (
            f"{meta.label} is stored in database {alias!r}, not in the events database "
            f"{settings.DATABASE!r} (EVENTING['DATABASE']): a trigger function can only write "
            "event rows into its own database."
        )
    return None


# served_by_database() answers per model, asked twice on every save: kept until the settings
# object changes (get_settings() is rebuilt whenever EVENTING changes) or routing does.
_served: dict = {"settings": None, "models": {}}


def served_by_database(model: type[models.Model]) -> bool:
    """Whether `model`'s DB events come from trigger functions (so the signals skip it)."""
    current = get_settings()
    if _served["settings"] is not current:
        _served["settings"], _served["models"] = current, {}
    known = _served["models"]
    if model not in known:
        known[model] = database_capture() and unservable_reason(model) is None
    return known[model]


@receiver(setting_changed)
def _forget_served(*, setting: str, **kwargs) -> None:
    """Routing or databases changed (tests): ask again."""
    if setting in ("DATABASES", "DATABASE_ROUTERS"):
        _served["settings"] = None
