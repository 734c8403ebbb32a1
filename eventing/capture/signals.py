"""Model signal receivers: turn saves and deletes into DB events. Thin: build data, emit."""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import task_postrun, task_prerun
from django.apps import apps
from django.core.signals import request_started
from django.db import close_old_connections, router
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from eventing.capture import model_data as payloads
from eventing.capture.actor import current_actor
from eventing.capture.database import served_by_database
from eventing.capture.database.switch import attached_types, captured_types
from eventing.models import PublicEventType
from eventing.recording.emit import record_events, resolve_due
from eventing.recording.subscriptions import (
    invalidate_publications,
    published_events,
    published_kinds,
    subscription_items,
)
from eventing.store.trigger_cache import current_index, invalidate, refresh
from triggers import types
from triggers.matching import matches_filter, watched_change
from triggers.models import Trigger
from triggers.validation import INTERNAL_APPS

logger = logging.getLogger(__name__)

OLD_ROW_ATTR = "_eventing_old_row"
DELETED_ROW_ATTR = "_eventing_deleted_row"
# Set on an instance whose row was already gone when its delete() began: nothing to report.
ROW_GONE = object()
# In database mode, the DB event types whose trigger functions were attached before the write.
ATTACHED_ATTR = "_eventing_attached"


def signals_connect() -> None:
    """Connect every receiver Eventing uses; called once from AppConfig.ready()."""
    pre_save.connect(capture_old_row, dispatch_uid="eventing.capture_old_row")
    post_save.connect(on_post_save, dispatch_uid="eventing.on_post_save")
    # Delete receivers go on every model a trigger may name, from the start: the index is
    # consulted when a row is deleted, so a process whose first query is a delete, or that
    # only ever deletes, still sees triggers (also ones created later elsewhere, within the
    # TTL). Eventing's own models keep Django's fast delete (retention deletes in bulk).
    for model in capturable_models():
        uid = model._meta.label
        pre_delete.connect(capture_deleted_row, sender=model, dispatch_uid=f"eventing.pre.{uid}")
        post_delete.connect(on_post_delete, sender=model, dispatch_uid=f"eventing.post.{uid}")
    request_started.connect(refresh, dispatch_uid="eventing.refresh_on_request")
    # This process's own trigger changes take effect at once, for matching and delivery alike.
    post_save.connect(invalidate, sender=Trigger, dispatch_uid="eventing.invalidate_triggers")
    post_delete.connect(
        invalidate, sender=Trigger, dispatch_uid="eventing.invalidate_triggers_deleted"
    )
    task_prerun.connect(refresh, dispatch_uid="eventing.refresh_on_task", weak=False)
    for signal in (post_save, post_delete):
        signal.connect(
            invalidate_publications,
            sender=PublicEventType,
            dispatch_uid=f"eventing.invalidate_publications.{signal is post_save}",
        )
    # Like a request's end in Django: drop connections that broke or outlived CONN_MAX_AGE.
    task_postrun.connect(close_connections, dispatch_uid="eventing.close_connections", weak=False)


# Tasks on one thread check their connections at most this often (seconds).
CONNECTION_CHECK_EVERY_S = 1.0
_task_thread = threading.local()


def close_connections(**kwargs) -> None:
    """After Celery tasks, close database connections that are broken or too old.

    At most once a second per thread: each check makes the next query first run a health
    check (`SELECT 1`), a tenth of a single delivery's cost when done after every task. A
    task that meets a database error closes its connection at once anyway (eventing.tasks).
    """
    now = time.monotonic()
    if now - getattr(_task_thread, "checked_at", 0.0) < CONNECTION_CHECK_EVERY_S:
        return
    _task_thread.checked_at = now
    close_old_connections()


def capturable_models() -> list[type]:
    """Every installed model a DB trigger may name (not Eventing's or Django's internals)."""
    return [m for m in apps.get_models() if m._meta.app_label not in INTERNAL_APPS]


def _kinds(sender) -> frozenset[str]:
    """DB event types with triggers on `sender`; empty for most models (the fast path)."""
    if sender._meta.app_label in INTERNAL_APPS:
        return frozenset()
    label = sender._meta.label
    return current_index().db_models.get(label, frozenset()) | published_kinds(label)


def _before_write(sender, instance) -> frozenset[str]:
    """The DB event types the receivers may have to record for the write about to be made.

    In database mode the types whose trigger functions were seen attached are left to them
    (a write made now fires them), and the instance keeps which those were for after the write.
    """
    kinds = _kinds(sender)
    if kinds and served_by_database(sender):
        attached = attached_types(sender)
        instance.__dict__[ATTACHED_ATTR] = attached
        return kinds - attached
    return kinds


def _after_write(sender, instance, using) -> frozenset[str]:
    """The DB event types the receivers record for the write just made.

    In database mode, a type whose function was not seen attached before the write is left to
    the function only if the database says it captured this write (see capture.database.switch):
    a `sync` may have attached it in between, even after an autocommit write committed.
    """
    kinds = _kinds(sender)
    if not kinds or not served_by_database(sender):
        return kinds
    unsure = kinds - instance.__dict__.pop(ATTACHED_ATTR, frozenset())
    if not unsure:
        return frozenset()
    return unsure - captured_types(sender, unsure, using or router.db_for_write(sender))


def capture_old_row(sender, instance, raw=False, using=None, **kwargs) -> None:
    """Before an update, read the stored row so DB_UPDATE can send `old` and `changed`."""
    if raw or types.DB_UPDATE not in _before_write(sender, instance):
        return
    pk = instance.pk
    # A new row with a defaulted pk is a plain INSERT: there is no old row to read.
    if pk is None or (instance._state.adding and instance._meta.pk.has_default()):
        return
    stored = sender._base_manager.using(using).filter(pk=pk).first()
    if stored is not None:
        setattr(instance, OLD_ROW_ATTR, payloads.row_values(stored))


def on_post_save(sender, instance, created, raw=False, using=None, **kwargs) -> None:
    """Emit DB_INSERT or DB_UPDATE for the saved row."""
    if raw:
        return
    kinds = _after_write(sender, instance, using)
    if not kinds:
        return
    new = payloads.row_values(instance)
    old = instance.__dict__.pop(OLD_ROW_ATTR, None)
    if created:
        if types.DB_INSERT in kinds:
            emit_db(types.DB_INSERT, instance, using, old=None, new=new, changed=None)
    elif types.DB_UPDATE in kinds:
        changed = payloads.changed_fields(old, new) if old is not None else list(new)
        emit_db(types.DB_UPDATE, instance, using, old=old, new=new, changed=changed)


def capture_deleted_row(sender, instance, using=None, origin=None, **kwargs) -> None:
    """Before `instance.delete()`, read the stored row: the instance in hand may be stale.

    Rows a queryset delete or a cascade collected were just read by Django in the deleting
    transaction, so only the instance the delete started from needs the extra read.
    """
    kinds = _before_write(sender, instance)
    if origin is not instance or types.DB_DELETE not in kinds:
        return
    stored = sender._base_manager.using(using).filter(pk=instance.pk).first()
    instance.__dict__[DELETED_ROW_ATTR] = (
        ROW_GONE if stored is None else payloads.row_values(stored)
    )


def on_post_delete(sender, instance, using=None, **kwargs) -> None:
    """Emit DB_DELETE for the deleted row."""
    old = instance.__dict__.pop(DELETED_ROW_ATTR, None)
    if old is ROW_GONE or types.DB_DELETE not in _after_write(sender, instance, using):
        return
    if old is None:
        old = payloads.row_values(instance)
    emit_db(types.DB_DELETE, instance, using, old=old, new=None, changed=None)


def emit_db(event_type, instance, using, *, old, new, changed) -> None:
    """Record the event for every trigger on this model whose watch list and filter pass."""
    label = instance._meta.label
    sensitive = payloads.sensitive_fields(type(instance))
    items = []
    who = current_actor()
    for trigger in current_index().find(event_type, label):
        if changed is not None and not watched_change(trigger.watch_fields, changed):
            continue
        # Sensitive fields stay out of the filter's view and the payload unless listed.
        hidden = sensitive.difference(trigger.payload_fields)
        full = payloads.db_data(
            using=using,
            instance=instance,
            old=payloads.without(old, hidden),
            new=payloads.without(new, hidden),
            changed=None if changed is None else [f for f in changed if f not in hidden],
        )
        if not matches_filter(trigger.filter, full):
            continue
        if trigger.payload_fields:
            fields = trigger.payload_fields
            full["old"] = _project(full["old"], fields)
            full["new"] = _project(full["new"], fields)
        if who is not None and trigger.send_actor:
            full["actor"] = who
        items.append((trigger, full))
    if items:
        record_events(event_type, items, source=label, due=resolve_due())
    publish_to_owners(event_type, label, old, new)


def publish_to_owners(event_type: str, label: str, old, new) -> None:
    """Record the catalog's public events this DB event makes, for the row's owner only."""
    for name, owner, payload in published_events(event_type, label, old, new):
        items = subscription_items(owner, name, payload)
        if items:
            record_events(name, items, source=label, due=resolve_due())


def _project(values: dict | None, fields: tuple[str, ...]) -> dict | None:
    if values is None:
        return None
    return {name: values[name] for name in fields if name in values}
