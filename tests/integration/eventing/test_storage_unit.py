"""EventingStorage and file intents without a worker: pass-through, rows, errors, resolution."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured, SuspiciousFileOperation
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, InMemoryStorage, storages
from django.db import connection, transaction
from django.utils import timezone

from eventing.capture import detached
from eventing.capture.intents import FileIntent, resolve_intents
from eventing.capture.storage import EventingStorage
from eventing.dispatch import publish as enqueue
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db(transaction=True)

ALIASES = ("evented_files", "evented_memory")


@pytest.fixture
def published_ids(monkeypatch, settings):
    """Ids sent to the broker (the broker itself is not needed here)."""
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}
    sent = []
    monkeypatch.setattr(enqueue, "publish", lambda event_id, *a, **k: sent.append(event_id) or 1)
    return sent


@pytest.fixture
def prefix():
    """A folder of its own for each test, so names never collide; removed afterwards."""
    name = uuid.uuid4().hex[:10]
    yield name
    shutil.rmtree(storages["plain_files"].path(name), ignore_errors=True)


def file_trigger(alias: str, kind: str = "FILE_CREATE", **kwargs):
    return TriggerFactory(type=kind, source=alias, url="http://127.0.0.1:9/ok", **kwargs)


def rows(kind: str = "FILE_CREATE") -> list[EventLog]:
    return list(EventLog.objects.filter(type=kind).order_by("created_at"))


def age(event_ids, seconds: float) -> None:
    """Make rows look written `seconds` ago (a crash that long ago)."""
    past = timezone.now() - dt.timedelta(seconds=seconds)
    EventLog.objects.filter(id__in=list(event_ids)).update(created_at=past, deliver_at=past)


# Configuration


def test_alias_is_found_in_storages():
    assert storages["evented_files"].alias == "evented_files"
    assert storages["evented_memory"].alias == "evented_memory"
    assert isinstance(storages["evented_files"].wrapped, FileSystemStorage)
    assert storages["evented_files"].wrapped is storages["plain_files"]
    assert isinstance(storages["evented_memory"].wrapped, InMemoryStorage)


def test_explicit_alias_wins_and_deconstructs():
    storage = EventingStorage(wraps="plain_files", alias="uploads")
    assert storage.alias == "uploads"
    path, args, kwargs = storage.deconstruct()
    assert path == "eventing.storage.EventingStorage"
    assert kwargs == {"wraps": "plain_files", "alias": "uploads"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of 'backend'"),
        ({"backend": "x.Y", "wraps": "plain_files", "alias": "a"}, "exactly one of 'backend'"),
        ({"wraps": "plain_files", "options": {}, "alias": "a"}, "'options' go with 'backend'"),
        (
            {"backend": "django.core.files.storage.InMemoryStorage", "options": [], "alias": "a"},
            "'options' must be a dict",
        ),
        ({"backend": "no.such.Storage", "alias": "a"}, "['backend']: cannot import"),
        ({"wraps": "a", "alias": "a"}, "cannot wrap itself"),
        ({"wraps": "nowhere", "alias": "a"}, "['wraps']: 'nowhere' is not an alias"),
        ({"wraps": "evented_files", "alias": "a"}, "emit every event twice"),
        ({"backend": "django.core.files.storage.InMemoryStorage"}, "give 'alias'"),
    ],
)
def test_bad_options_are_refused_naming_the_option(kwargs, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        EventingStorage(**kwargs)


def test_identical_options_under_two_aliases_are_ambiguous(settings):
    options = {"wraps": "plain_files"}
    settings.STORAGES = {
        **settings.STORAGES,
        "one": {"BACKEND": "eventing.storage.EventingStorage", "OPTIONS": options},
        "two": {"BACKEND": "eventing.storage.EventingStorage", "OPTIONS": dict(options)},
    }
    with pytest.raises(ImproperlyConfigured, match="one, two have identical OPTIONS"):
        storages["one"]


def test_system_check_names_the_broken_alias_and_option(settings):
    from eventing.checks import check_storages

    assert check_storages() == []
    settings.STORAGES = {
        **settings.STORAGES,
        "typo": {"BACKEND": "eventing.storage.EventingStorage", "OPTIONS": {"wrap": "x"}},
        "both": {
            "BACKEND": "eventing.storage.EventingStorage",
            "OPTIONS": {"wraps": "plain_files", "backend": "x.Y"},
        },
        "dangling": {"BACKEND": "eventing.storage.EventingStorage", "OPTIONS": {"wraps": "gone"}},
        "twice": {
            "BACKEND": "eventing.storage.EventingStorage",
            "OPTIONS": {"wraps": "evented_files"},
        },
        "unimportable": {
            "BACKEND": "eventing.storage.EventingStorage",
            "OPTIONS": {"backend": "no.such.Storage"},
        },
    }
    errors = check_storages()
    assert {error.id for error in errors} == {"eventing.E010"}
    messages = "\n".join(error.msg for error in errors)
    assert "STORAGES['typo']['OPTIONS']: unknown option(s) wrap" in messages
    assert "STORAGES['both']: EventingStorage OPTIONS: give exactly one" in messages
    assert "STORAGES['dangling']['OPTIONS']['wraps']: 'gone' is not an alias" in messages
    assert "STORAGES['twice']['OPTIONS']['wraps']: 'evented_files' is an EventingStorage" in (
        messages
    )
    assert "STORAGES['unimportable']['OPTIONS']['backend']: cannot import" in messages
    assert len(errors) == 5


# Pass-through


@pytest.mark.parametrize("alias", ALIASES)
def test_without_triggers_it_is_the_wrapped_storage(alias, prefix):
    storage = storages[alias]
    name = storage.save(f"{prefix}/a.txt", ContentFile(b"hello"))
    assert name == f"{prefix}/a.txt"
    again = storage.save(f"{prefix}/a.txt", ContentFile(b"again"))
    assert again != name
    assert again.startswith(f"{prefix}/a_")
    assert storage.exists(name)
    assert storage.wrapped.exists(again)
    assert storage.size(name) == 5
    with storage.open(again) as fh:
        assert fh.read() == b"again"
    assert sorted(storage.listdir(prefix)[1]) == sorted([name.split("/")[-1], again.split("/")[-1]])
    assert storage.url(name) == storage.wrapped.url(name)
    assert storage.base_url == storage.wrapped.base_url  # read through __getattr__
    odd = "x/a b?.txt"
    assert storage.generate_filename(odd) == storage.wrapped.generate_filename(odd)
    with pytest.raises(SuspiciousFileOperation, match="path traversal"):
        storage.generate_filename("x/../y.txt")
    storage.delete(name)
    assert not storage.exists(name)
    assert not EventLog.objects.exists()


def test_path_is_passed_through_including_its_error():
    assert storages["evented_files"].path("a.txt") == storages["plain_files"].path("a.txt")
    with pytest.raises(SuspiciousFileOperation):
        storages["evented_files"].path("../outside.txt")


# Two phases


@pytest.mark.parametrize("alias", ALIASES)
def test_save_records_intent_then_stages_with_final_name(alias, prefix, published_ids, monkeypatch):
    trigger = file_trigger(alias)
    storage = storages[alias]
    seen = {}
    real_save = storage.wrapped._save

    def spy(name, content):
        seen["during"] = list(EventLog.objects.values_list("status", "payload"))
        return real_save(name, content)

    monkeypatch.setattr(storage.wrapped, "_save", spy)
    storage.save(f"{prefix}/report.pdf", ContentFile(b"first"))
    name = storage.save(f"{prefix}/report.pdf", ContentFile(b"second!"))

    assert seen["during"][0][0] == EventStatus.INTENT  # written before the operation ran
    assert seen["during"][0][1]["name"] == name
    second = rows()[1]
    assert second.status == EventStatus.STAGED
    assert second.trigger_id == trigger.id
    assert second.source == alias
    assert second.payload == {
        "storage": alias,
        "name": name,
        "size": 7,
        "content_type": "application/pdf",
        "url": storage.wrapped.url(name),
        "meta": {},
        "path": "/" + name,
        "type": "file",
    }
    assert name != f"{prefix}/report.pdf"
    assert published_ids == [row.id for row in rows()]


@pytest.mark.parametrize("alias", ALIASES)
def test_meta_passed_to_save_and_delete_is_space_clouds_meta(alias, prefix, published_ids):
    file_trigger(alias, "FILE_CREATE")
    file_trigger(alias, "FILE_DELETE")
    storage = storages[alias]
    name = storage.save(f"{prefix}/m.txt", ContentFile(b"x"), meta={"uploader": "ada"})
    storage.delete(name, meta={"reason": "gdpr"})
    [created], [deleted] = rows("FILE_CREATE"), rows("FILE_DELETE")
    assert (created.payload["meta"], created.payload["path"]) == ({"uploader": "ada"}, "/" + name)
    assert (deleted.payload["meta"], deleted.payload["type"]) == ({"reason": "gdpr"}, "file")


@pytest.mark.parametrize("alias", ALIASES)
def test_delete_of_existing_file_only(alias, prefix, published_ids):
    file_trigger(alias, "FILE_DELETE")
    storage = storages[alias]
    name = storage.save(f"{prefix}/gone.txt", ContentFile(b"bye"))
    storage.delete(name)
    storage.delete(f"{prefix}/never-there.txt")
    [row] = rows("FILE_DELETE")
    assert row.status == EventStatus.STAGED
    assert row.payload["name"] == name
    assert row.payload["size"] == 3
    assert row.payload["content_type"] == "text/plain"
    assert not storage.exists(name)
    assert published_ids == [row.id]


def broken_upload() -> File:
    """An upload whose stream broke: reading it raises, inside the storage's own save."""
    stream = io.BytesIO(b"partial")
    stream.close()
    return File(stream, name="upload.txt")


@pytest.mark.parametrize("alias", ALIASES)
def test_failing_save_raises_unchanged_and_cancels(alias, prefix, published_ids):
    file_trigger(alias)
    storage = storages[alias]
    with pytest.raises(ValueError, match="closed file") as bare:
        storage.wrapped.save(f"{prefix}/bare.txt", broken_upload())
    with pytest.raises(ValueError, match="closed file") as wrapped:
        storage.save(f"{prefix}/wrapped.txt", broken_upload())
    assert type(wrapped.value) is type(bare.value)
    assert str(wrapped.value) == str(bare.value)
    [row] = rows()
    assert row.status == EventStatus.CANCELLED
    assert type(bare.value).__name__ in row.remark
    assert row.processed_at is not None
    assert published_ids == []


def test_path_pattern_and_final_name(prefix, published_ids):
    png = file_trigger("evented_memory", path_pattern=f"{prefix}/avatars/*.png")
    storage = storages["evented_memory"]
    storage.save(f"{prefix}/avatars/a.png", ContentFile(b"png"))
    storage.save(f"{prefix}/avatars/b.jpg", ContentFile(b"jpg"))
    storage.save(f"{prefix}/other/c.png", ContentFile(b"png"))
    [row] = rows()
    assert row.trigger_id == png.id
    assert row.payload["name"] == f"{prefix}/avatars/a.png"
    assert row.payload["content_type"] == "image/png"


def test_final_name_outside_the_pattern_cancels(prefix, published_ids, monkeypatch):
    """A storage may pick another name than predicted (a race); the trigger's pattern decides."""
    file_trigger("evented_memory", path_pattern=f"{prefix}/*.txt")
    wrapped = storages["evented_memory"].wrapped
    real_save = wrapped._save
    monkeypatch.setattr(wrapped, "_save", lambda name, content: real_save(name + ".bak", content))
    name = storages["evented_memory"].save(f"{prefix}/a.txt", ContentFile(b"a"))
    assert name == f"{prefix}/a.txt.bak"
    [row] = rows()
    assert row.status == EventStatus.CANCELLED
    assert "a.txt.bak" in row.remark
    assert published_ids == []


class DatedStorage(InMemoryStorage):
    """A storage with its own save(): it files everything under a folder it picks."""

    def save(self, name, content, max_length=None):
        return super().save(f"2026/{name}", content, max_length=max_length)


def test_storage_with_its_own_save_chooses_the_name(prefix, published_ids):
    file_trigger("custom_alias")
    storage = EventingStorage(
        backend="tests.integration.eventing.test_storage_unit.DatedStorage", alias="custom_alias"
    )
    name = storage.save(f"{prefix}/a.txt", ContentFile(b"abc"))
    assert name == f"2026/{prefix}/a.txt"
    assert storage.exists(name)
    [row] = rows()
    assert row.status == EventStatus.STAGED
    assert row.payload["name"] == name
    assert row.payload["size"] == 3
    assert published_ids == [row.id]


# Outside the caller's transaction


def test_rows_survive_the_callers_rollback(prefix, published_ids):
    file_trigger("evented_memory")
    storage = storages["evented_memory"]
    saved = {}

    def save_then_fail():
        with transaction.atomic():
            saved["name"] = storage.save(f"{prefix}/kept.txt", ContentFile(b"kept"))
            # Elsewhere than SQLite: committed on another connection before the caller ends.
            saved["visible_inside"] = EventLog.objects.filter(payload__name=saved["name"]).exists()
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        save_then_fail()
    name = saved["name"]
    assert saved["visible_inside"] is (connection.vendor != "sqlite")
    assert detached.flush(30)
    [row] = rows()
    assert row.status == EventStatus.STAGED
    assert row.payload["name"] == name
    assert storage.exists(name)  # the file outlived the rollback, and so did its event
    assert published_ids == [row.id]


def test_rows_written_when_the_callers_transaction_commits(prefix, published_ids):
    file_trigger("evented_memory")
    with transaction.atomic():
        name = storages["evented_memory"].save(f"{prefix}/a.txt", ContentFile(b"a"))
    assert detached.flush(30)
    [row] = rows()
    assert row.status == EventStatus.STAGED
    assert row.payload["name"] == name
    assert published_ids == [row.id]


def test_mode_follows_the_callers_connection():
    assert detached.mode_for("default") is detached.Mode.INLINE
    with transaction.atomic():
        expected = detached.Mode.DEFER if connection.vendor == "sqlite" else detached.Mode.WAIT
        assert detached.mode_for("default") is expected


# The sweeper's step


def make_intent(alias: str, kind: str, name: str) -> list[EventLog]:
    intent = FileIntent.open(kind, alias, storages[alias].describe(name, 1))
    return intent.rows


def test_orphaned_intents_are_resolved_by_existence(prefix, published_ids, settings):
    settings.EVENTING = {**settings.EVENTING, "INTENT_GRACE_S": 60}
    alias = "evented_memory"
    file_trigger(alias)
    file_trigger(alias, "FILE_DELETE")
    storage = storages[alias]
    written = storage.wrapped.save(f"{prefix}/written.txt", ContentFile(b"w"))
    kept = storage.wrapped.save(f"{prefix}/kept.txt", ContentFile(b"k"))
    created = make_intent(alias, "FILE_CREATE", written)
    never = make_intent(alias, "FILE_CREATE", f"{prefix}/never.txt")
    deleted = make_intent(alias, "FILE_DELETE", f"{prefix}/deleted.txt")
    not_deleted = make_intent(alias, "FILE_DELETE", kept)
    young = make_intent(alias, "FILE_CREATE", f"{prefix}/young.txt")
    age([r.id for r in created + never + deleted + not_deleted], 61)

    assert resolve_intents() == 4

    def status(rs):
        return EventLog.objects.get(id=rs[0].id)

    assert status(created).status == EventStatus.STAGED
    assert "exists, so it was written" in status(created).remark
    assert status(never).status == EventStatus.CANCELLED
    assert "does not exist" in status(never).remark
    assert status(deleted).status == EventStatus.STAGED
    assert status(not_deleted).status == EventStatus.CANCELLED
    assert status(young).status == EventStatus.INTENT
    assert sorted(published_ids) == sorted([created[0].id, deleted[0].id])
    assert resolve_intents() == 0


def test_intent_of_an_unknown_storage_is_cancelled_and_a_failing_one_waits(
    prefix, published_ids, monkeypatch
):
    file_trigger("evented_memory")
    [lost] = make_intent("evented_memory", "FILE_CREATE", f"{prefix}/a.txt")
    [flaky] = make_intent("evented_memory", "FILE_CREATE", f"{prefix}/b.txt")
    EventLog.objects.filter(id=lost.id).update(source="removed_alias")
    age([lost.id, flaky.id], 3600)

    def unreachable(name):
        raise ConnectionError("storage down")

    monkeypatch.setattr(storages["evented_memory"].wrapped, "exists", unreachable)
    assert resolve_intents() == 1
    lost.refresh_from_db()
    flaky.refresh_from_db()
    assert lost.status == EventStatus.CANCELLED
    assert "'removed_alias' is not in settings.STORAGES" in lost.remark
    assert flaky.status == EventStatus.INTENT
