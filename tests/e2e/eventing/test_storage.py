"""End to end: file saves and deletes through EventingStorage reach a real receiver.

FileSystemStorage and InMemoryStorage, through the real pipeline: intent and staged rows, the
broker, a real Celery worker (with the sweeper in its embedded beat) and an HTTP receiver.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.db import transaction
from django.utils import timezone

from eventing.capture import detached
from eventing.capture.intents import FileIntent
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.testapp.models import Order
from tests.waiting import wait_until

# `stacks`: the broker and the database engine decide this outcome; make test runs it on each.
pytestmark = [pytest.mark.e2e, pytest.mark.stacks, pytest.mark.django_db(transaction=True)]

ALIASES = ("evented_files", "evented_memory")


@pytest.fixture
def prefix():
    """A folder of its own per test; removed afterwards from the shared test media."""
    name = uuid.uuid4().hex[:10]
    yield name
    shutil.rmtree(storages["plain_files"].path(name), ignore_errors=True)


def file_trigger(receiver, alias: str, kind: str, path: str, **kwargs):
    return TriggerFactory(type=kind, source=alias, url=receiver.url(path), **kwargs)


def all_processed() -> bool:
    return not EventLog.objects.exclude(
        status__in=(EventStatus.PROCESSED, EventStatus.CANCELLED)
    ).exists()


@pytest.mark.parametrize("alias", ALIASES)
def test_create_overwrite_and_delete(worker, receiver, alias, prefix):
    file_trigger(receiver, alias, "FILE_CREATE", "/ok/create")
    file_trigger(receiver, alias, "FILE_DELETE", "/ok/delete")
    storage = storages[alias]

    first = storage.save(f"{prefix}/avatars/me.png", ContentFile(b"\x89PNG...."))
    second = storage.save(f"{prefix}/avatars/me.png", ContentFile(b"\x89PNG!"))
    storage.delete(first)
    storage.delete(f"{prefix}/avatars/never-saved.png")  # missing: no event
    storage.save(f"{prefix}/marker.txt", ContentFile(b"m"))  # comes after the missing delete

    created = [r.json() for r in receiver.wait_for("/ok/create", count=3)]
    [deleted] = [r.json() for r in receiver.wait_for("/ok/delete")]
    by_name = {event["data"]["name"]: event for event in created}
    assert first == f"{prefix}/avatars/me.png"
    assert second != first
    assert second.startswith(f"{prefix}/avatars/me_")
    assert set(by_name) == {first, second, f"{prefix}/marker.txt"}
    assert by_name[first]["type"] == "FILE_CREATE"
    assert by_name[first]["data"] == {
        "storage": alias,
        "name": first,
        "size": 8,
        "content_type": "image/png",
        "url": storage.url(first),
        "meta": {},
        "path": "/" + first,
        "type": "file",
    }
    assert by_name[second]["data"]["size"] == 5
    assert deleted["type"] == "FILE_DELETE"
    assert deleted["data"]["name"] == first
    assert deleted["data"]["size"] == 8
    wait_until(all_processed, message="every event processed")
    assert EventLog.objects.filter(type="FILE_DELETE").count() == 1
    assert len(receiver.on("/ok/delete")) == 1


@pytest.mark.parametrize("alias", ALIASES)
def test_failing_save_delivers_nothing(worker, receiver, alias, prefix):
    file_trigger(receiver, alias, "FILE_CREATE", "/ok/fail")
    storage = storages[alias]
    with pytest.raises(OSError, match="disk full"):
        storage.save(f"{prefix}/broken.txt", FailingContent(b"half a file"))
    [row] = EventLog.objects.all()
    assert row.status == EventStatus.CANCELLED
    assert "OSError: disk full" in row.remark
    marker = storage.save(f"{prefix}/after.txt", ContentFile(b"ok"))
    [got] = receiver.wait_for("/ok/fail")
    assert got.json()["data"]["name"] == marker
    wait_until(all_processed, message="marker processed")
    assert len(receiver.on("/ok/fail")) == 1
    assert EventLog.objects.get(id=row.id).status == EventStatus.CANCELLED


class FailingContent(ContentFile):
    """Content whose stream fails half-way, as a full disk or a dropped upload would."""

    def chunks(self, chunk_size=None):
        yield self.read(4)
        raise OSError("disk full")


def test_crash_between_intent_and_operation(worker, receiver, prefix, settings):
    """Intents left by a dead process are resolved by the worker's sweeper, by existence."""
    alias = "evented_files"  # the sweeper runs in the worker: a storage both processes see
    file_trigger(receiver, alias, "FILE_CREATE", "/ok/crash-create")
    file_trigger(receiver, alias, "FILE_DELETE", "/ok/crash-delete")
    storage = storages[alias]
    kept = storage.wrapped.save(f"{prefix}/kept.txt", ContentFile(b"kept"))

    def orphan(kind: str, name: str) -> EventLog:
        [row] = FileIntent.open(kind, alias, storage.describe(name, 4)).rows
        return row

    # The process died after the write / before the write / after the delete / before it.
    written = orphan("FILE_CREATE", storage.wrapped.save(f"{prefix}/w.txt", ContentFile(b"w")))
    not_written = orphan("FILE_CREATE", f"{prefix}/never.txt")
    deleted = orphan("FILE_DELETE", f"{prefix}/gone.txt")
    not_deleted = orphan("FILE_DELETE", kept)
    ids = [written.id, not_written.id, deleted.id, not_deleted.id]
    assert set(EventLog.objects.values_list("status", flat=True)) == {EventStatus.INTENT}
    grace = settings.EVENTING.get("INTENT_GRACE_S", 60)
    past = timezone.now() - dt.timedelta(seconds=grace + 5)
    EventLog.objects.filter(id__in=ids).update(created_at=past, deliver_at=past)

    [create] = receiver.wait_for("/ok/crash-create", timeout_s=20)
    [delete] = receiver.wait_for("/ok/crash-delete", timeout_s=20)
    assert create.json()["data"]["name"] == written.payload["name"]
    assert delete.json()["data"]["name"] == f"{prefix}/gone.txt"
    wait_until(all_processed, message="intents resolved")
    status = dict(EventLog.objects.filter(id__in=ids).values_list("id", "status"))
    assert status == {
        written.id: EventStatus.PROCESSED,
        not_written.id: EventStatus.CANCELLED,
        deleted.id: EventStatus.PROCESSED,
        not_deleted.id: EventStatus.CANCELLED,
    }
    assert "does not exist" in EventLog.objects.get(id=not_written.id).remark


@pytest.mark.parametrize("alias", ALIASES)
def test_callers_rollback_still_delivers(worker, receiver, alias, prefix):
    file_trigger(receiver, alias, "FILE_CREATE", "/ok/rollback")
    storage = storages[alias]
    saved = {}

    def save_then_fail():
        with transaction.atomic():
            Order.objects.create(status="rolled back")
            saved["name"] = storage.save(f"{prefix}/kept.txt", ContentFile(b"kept"))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        save_then_fail()
    assert not Order.objects.exists()  # the caller's data is gone …
    assert storage.exists(saved["name"])  # … the file is not, …
    [got] = receiver.wait_for("/ok/rollback")  # … so its event is delivered.
    assert got.json()["data"]["name"] == saved["name"]
    wait_until(all_processed, message="processed")
    assert detached.flush(10)


def test_path_pattern_filters(worker, receiver, prefix):
    alias = "evented_memory"
    file_trigger(receiver, alias, "FILE_CREATE", "/ok/png", path_pattern=f"{prefix}/avatars/*.png")
    file_trigger(receiver, alias, "FILE_CREATE", "/ok/any")
    storage = storages[alias]
    for name in ("avatars/a.png", "avatars/b.jpg", "docs/c.png", "avatars/d.png"):
        storage.save(f"{prefix}/{name}", ContentFile(b"x"))
    receiver.wait_for("/ok/any", count=4)
    pngs = receiver.wait_for("/ok/png", count=2)
    wait_until(all_processed, message="processed")
    assert sorted(r.json()["data"]["name"] for r in receiver.on("/ok/png")) == [
        f"{prefix}/avatars/a.png",
        f"{prefix}/avatars/d.png",
    ]
    assert len(pngs) == 2


def test_model_filefield_on_default_storage(worker, receiver, settings, tmp_path):
    """Configured as `default`, existing FileFields emit events with no code change."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "eventing.storage.EventingStorage",
            "OPTIONS": {
                "backend": "django.core.files.storage.FileSystemStorage",
                "options": {"location": str(tmp_path), "base_url": "/media/"},
            },
        },
    }
    file_trigger(receiver, "default", "FILE_CREATE", "/ok/model")
    assert default_storage.alias == "default"

    order = Order.objects.create(attachment=ContentFile(b"%PDF-1.7", name="invoice.pdf"))

    [got] = receiver.wait_for("/ok/model")
    assert got.json()["data"] == {
        "storage": "default",
        "name": order.attachment.name,
        "size": 8,
        "content_type": "application/pdf",
        "url": "/media/" + order.attachment.name,
        "meta": {},
        "path": "/" + order.attachment.name,
        "type": "file",
    }
    assert order.attachment.name.startswith("orders/invoice")
    assert (tmp_path / order.attachment.name).read_bytes() == b"%PDF-1.7"
