"""Keeping functions in step: the triggers-changed service and the migrate hooks.

Saving a Trigger runs no DDL by itself: no model signal of Trigger touches the functions. What
writes Trigger rows on purpose (Mission Control, the API, `eventing_triggers import`, the
enable/disable actions) writes them inside `triggers_changing()`, which expands what was
captured under the old triggers, lets the write happen, then syncs the functions, all in the
write's transaction. A Trigger saved through the ORM elsewhere (a host's script, a shell) leaves
the functions as they were until `eventing_capture sync` or `triggers_changed()`; until then
`eventing_capture status` and check eventing.W006 report the table as stale or missing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import AppConfig
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.db import DatabaseError, connections, models, transaction
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate, pre_migrate

from eventing.capture.database.catalog import table_schema
from eventing.capture.database.expand import expand_all
from eventing.capture.database.install import sync
from eventing.capture.database.mode import database_capture, same_database, unservable_reason
from eventing.capture.database.switch import retell_sessions, tell_session
from eventing.conf import settings
from eventing.models import EventCapture
from triggers.models import Trigger
from triggers.validation import DB_SOURCE_CHECKS

logger = logging.getLogger(__name__)

# --- keeping functions in step ----------------------------------------------------------------


@contextmanager
def triggers_changing(using: str | None = None) -> Iterator[list[str]]:
    """Write Trigger rows inside this block: capture stays in step, in one transaction.

    Before the block, captures written under the old triggers are expanded by them; after it,
    the functions are synced to the new triggers. An exception inside rolls everything back and
    syncs nothing. Yields a list that holds, after the block, what sync did (one line each).
    """
    db = using or settings.DATABASE
    done: list[str] = []
    with transaction.atomic(using=db):
        if database_capture():
            expand_all(settings.DATABASE)
        yield done
        done.extend(triggers_changed(db))


def triggers_changed(using: str | None = None) -> list[str]:
    """Triggers were written: bring the functions in step (in the caller's transaction).

    The sync step of `triggers_changing`, for code that wrote Trigger rows without it;
    what was done, one line each.
    """
    if not database_capture():
        return []
    return sync(using or settings.DATABASE)


def sync_before_migrate(sender, using: str | None = None, **kwargs) -> None:
    """Before migrations run: expanders that read each value from the captured JSON, so a
    column the migrations drop, rename or retype cannot fail an expansion meanwhile."""
    sync_for_migrate(using, robust=True)


def sync_after_migrate(sender, using: str | None = None, **kwargs) -> None:
    """After migrate (a table renamed, a column dropped): the fast functions of the new models."""
    sync_for_migrate(using, robust=False)


def sync_for_migrate(using: str | None, *, robust: bool) -> None:
    """Sync around migrate, in database mode only: a migrate run by a process left in signal
    mode must not drop the functions the other processes rely on (W006 reports leftovers)."""
    db = using or settings.DATABASE
    if not database_capture() or not same_database(db, settings.DATABASE):
        return
    connection = connections[settings.DATABASE]
    if any(
        table_schema(connection, model._meta.db_table) is None for model in (EventCapture, Trigger)
    ):
        # The first migrate: eventing's tables are not there yet, nothing can be captured.
        return
    try:
        for line in sync(settings.DATABASE, robust=robust):
            logger.info("eventing capture: %s", line)
    except DatabaseError as exc:  # before the first migrate: no trigger table yet
        logger.warning("eventing capture not synced around migrate: %s", exc)


def capture_connect(app_config: AppConfig) -> None:
    """Connect the receivers that keep trigger functions in step; called from ready()."""
    connection_created.connect(tell_session, dispatch_uid="eventing.capture.tell_session")
    setting_changed.connect(retell_sessions, dispatch_uid="eventing.capture.retell_sessions")
    pre_migrate.connect(
        sync_before_migrate, sender=app_config, dispatch_uid="eventing.capture.sync_migrating"
    )
    post_migrate.connect(
        sync_after_migrate, sender=app_config, dispatch_uid="eventing.capture.sync_migrated"
    )
    if check_source not in DB_SOURCE_CHECKS:
        DB_SOURCE_CHECKS.append(check_source)


def check_source(trigger: Trigger, model: type[models.Model]) -> None:
    """Trigger validation in database mode: refuse a model trigger functions cannot serve."""
    if not database_capture():
        return
    reason = unservable_reason(model)
    table = model._meta.db_table
    if reason is None and table_schema(connections[settings.DATABASE], table) is None:
        reason = (
            f"Table {model._meta.db_table} does not exist in the events database yet "
            "(run migrate first)."
        )
    if reason:
        raise ValidationError({"source": f"Database capture cannot serve this model: {reason}"})
