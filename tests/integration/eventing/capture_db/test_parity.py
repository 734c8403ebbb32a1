"""Both capture modes give the same `data` for the same writes, over every field kind."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from django.db import connection

from eventing.capture import database as capture_db
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY, payloads
from tests.testapp.models import Customer, Document, Order, Specimen

pytestmark = [POSTGRES_ONLY, pytest.mark.django_db]

UID = uuid.UUID("12345678-1234-5678-1234-567812345678")
DOCUMENT_ID = uuid.UUID("00000000-0000-0000-0000-0000000000d0")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00$")


@pytest.fixture(params=["signals", "database"])
def mode(request, settings):
    """Each test below runs once per capture mode."""
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": request.param}
    return request.param


@pytest.fixture(params=["fast", "robust"])
def both_modes(request, settings, monkeypatch):
    """Database mode with the signal receivers still capturing: every write is recorded twice,
    once by each mode, so the two can be compared row for row. Runs with each form of the
    functions (columns by name; through to_jsonb, as installed while migrations run); call
    the returned `install()` once the triggers exist."""
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "database"}
    monkeypatch.setattr("eventing.capture.signals.served_by_database", lambda model: False)

    def install() -> None:
        robust = request.param == "robust"
        capture_db.sync(robust=robust)
        installed = capture_db.read_catalog(connection).functions.values()
        assert {comment["robust"] for comment in installed} == {robust}

    return install


def related() -> tuple[Customer, Document]:
    return Customer.objects.create(name="owner"), Document.objects.create(
        id=DOCUMENT_ID, title="doc"
    )


def typical(owner: Customer, document: Document) -> dict:
    """A row with a value in every field."""
    return {
        "char": "chars ü 'quoted' \\ back",
        "text": "line\nbreak",
        "slug": "a-slug",
        "email": "a@example.com",
        "url": "https://example.com/x?y=1",
        "flag": True,
        "maybe": None,
        "small": -3,
        "integer": 2**31 - 1,
        "big": 2**53 + 1,
        "positive": 7,
        "positive_big": 2**63 - 1,
        "ratio": 1.0,
        "amount": Decimal("12.5"),
        "day": dt.date(2026, 11, 27),
        "moment": dt.datetime(2026, 11, 27, 10, 0, 0, 500, tzinfo=dt.UTC),
        "clock": dt.time(10, 30, 0, 5),
        "span": dt.timedelta(days=1, seconds=5, microseconds=10),
        "uid": UID,
        "doc": {"a": [1, 2.5, None, "x"], "b": {"c": True}, "n": 1.0},
        "blob": b"\x00\x01binary",
        "upload": "specimens/a.txt",
        "ip": "192.168.0.1",
        "owner": owner,
        "document": document,
        "renamed": 7,
        "token": "secret-token",
    }


EDGES = [
    # Infinity, a negative beyond JavaScript's safe integers, whole seconds, empty file name.
    {
        "ratio": float("inf"),
        "big": -(2**53) - 5,
        "moment": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "clock": dt.time(23, 59, 59),
        "span": dt.timedelta(0),
        "amount": Decimal("-0.001"),
        "upload": "",
        "ip": "2001:db8::1",
        "doc": [1, "two", {"three": 3}],
    },
    {"ratio": float("nan"), "big": 2**53 - 1, "span": dt.timedelta(microseconds=1)},
    {"ratio": -float("inf"), "small": 0, "doc": "a JSON string"},
    {"ratio": 1e16, "positive_big": 0, "span": dt.timedelta(days=-1, hours=3)},
    {"ratio": 1e15, "amount": Decimal("99999999999.999")},
    {"ratio": 1e-7, "maybe": False, "flag": False, "doc": {}},
    {"ratio": -0.0, "blob": b""},
    {},  # every default: nulls, zeros, empty strings
]


def expected_new(owner: Customer, document: Document) -> dict:
    """How `typical()` reads in `new`, as the wire format fixes it (docs/guarantees.md)."""
    return {
        "char": "chars ü 'quoted' \\ back",
        "text": "line\nbreak",
        "slug": "a-slug",
        "email": "a@example.com",
        "url": "https://example.com/x?y=1",
        "flag": True,
        "maybe": None,
        "small": -3,
        "integer": 2147483647,
        "big": "9007199254740993",
        "positive": 7,
        "positive_big": "9223372036854775807",
        "ratio": 1.0,
        "amount": "12.500",
        "day": "2026-11-27",
        "moment": "2026-11-27T10:00:00.000500+00:00",
        "clock": "10:30:00.000005",
        "span": 86405.00001,
        "uid": str(UID),
        "doc": {"a": [1, 2.5, None, "x"], "b": {"c": True}, "n": 1.0},
        "blob": base64.b64encode(b"\x00\x01binary").decode(),
        "upload": "specimens/a.txt",
        "ip": "192.168.0.1",
        "owner": owner.pk,
        "document": str(DOCUMENT_ID),
        "renamed": 7,
    }


def db_triggers() -> None:
    for kind in ("DB_INSERT", "DB_UPDATE", "DB_DELETE"):
        TriggerFactory(name=f"specimen_{kind.lower()}", type=kind, source="testapp.Specimen")


def test_every_field_kind_reads_the_same_in_each_mode(mode):
    db_triggers()
    owner, document = related()
    specimen = Specimen.objects.create(**typical(owner, document))
    specimen.char = "changed"
    specimen.ratio = 2.5
    specimen.save()
    pk = specimen.pk
    specimen.delete()

    (inserted,) = payloads("DB_INSERT")
    (updated,) = payloads("DB_UPDATE")
    (deleted,) = payloads("DB_DELETE")
    assert {k: inserted[k] for k in ("db", "model", "table", "pk", "old")} == {
        "db": "default",
        "model": "testapp.Specimen",
        "table": "testapp_specimen",
        "pk": pk,
        "old": None,
    }
    new = dict(inserted["new"])
    assert ISO_UTC.match(new.pop("created"))
    assert ISO_UTC.match(new.pop("updated"))
    assert new == {"id": pk, **expected_new(owner, document)}
    # 1.0 stays a float on the wire (PostgreSQL's own float output would write 1).
    assert isinstance(inserted["new"]["ratio"], float)
    assert isinstance(inserted["new"]["doc"]["n"], float)
    assert "token" not in inserted["new"]  # EXCLUDE_FIELDS

    assert updated["changed"] == ["char", "ratio", "updated"]
    assert updated["old"]["char"] == "chars ü 'quoted' \\ back"
    assert updated["new"]["char"] == "changed"
    assert updated["new"]["ratio"] == 2.5
    assert deleted["old"] == updated["new"]
    assert deleted["new"] is None
    assert "changed" not in inserted
    assert "changed" not in deleted


@pytest.mark.parametrize("edge", range(len(EDGES)))
def test_both_modes_record_equal_data_for_the_same_writes(both_modes, edge):
    db_triggers()
    both_modes()
    owner, document = related()
    values = {**typical(owner, document), **EDGES[edge]} if EDGES[edge] else {}
    specimen = Specimen.objects.create(**values)
    specimen.char = "second"
    specimen.doc = {"changed": [1, 2]}
    specimen.save()
    Specimen.objects.get(pk=specimen.pk).delete()

    by_mode: dict[str, list[tuple]] = {"signals": [], "database": []}
    for row in EventLog.objects.order_by("created_at", "type"):
        # Signal-captured rows were marked for publishing; trigger functions leave that to the
        # listener.
        by_mode["signals" if row.enqueued_at else "database"].append(
            (row.type, row.trigger_name, row.source, row.payload)
        )
    assert len(by_mode["signals"]) == 3
    assert sorted(by_mode["database"], key=str) == sorted(by_mode["signals"], key=str)


def test_sensitive_and_payload_fields_agree(both_modes):
    TriggerFactory(name="plain", type="DB_UPDATE", source="testapp.Specimen")
    TriggerFactory(
        name="opted_in",
        type="DB_UPDATE",
        source="testapp.Specimen",
        payload_fields=["token", "char"],
    )
    TriggerFactory(
        name="watching_token", type="DB_UPDATE", source="testapp.Specimen", watch_fields=["token"]
    )
    both_modes()
    specimen = Specimen.objects.create(token="first")
    specimen.token = "second"
    specimen.save()
    rows = {(r.trigger_name, bool(r.enqueued_at)): r.payload for r in EventLog.objects.all()}
    assert len(rows) == 6
    for name in ("plain", "opted_in", "watching_token"):
        assert rows[(name, True)] == rows[(name, False)], name
    assert "token" not in rows[("plain", False)]["new"]
    assert "token" not in rows[("plain", False)]["changed"]
    assert rows[("opted_in", False)]["new"] == {"token": "second", "char": ""}
    assert "token" in rows[("opted_in", False)]["changed"]
    # A watched sensitive field still fires the trigger; the payload still leaves it out.
    assert "token" not in rows[("watching_token", False)]["new"]


FILTERS = {
    "scalar": {"new.status": "paid"},
    "scalar_miss": {"new.status": "new"},
    "list": {"new.status": ["paid", "shipped"]},
    "in": {"new.status": {"in": ["x", "paid"]}},
    "in_substring": {"new.status": {"in": "unpaid"}},
    "not_in": {"new.status": {"not_in": ["paid"]}},
    "eq_number": {"new.quantity": {"eq": 2}},
    "eq_float": {"new.quantity": 2.0},
    "ne": {"new.quantity": {"ne": 2}},
    "exists": {"new.note": {"exists": True}},
    "not_exists": {"new.nothing": {"exists": False}},
    "old_on_update": {"old.status": "new"},
    "changed_list": {"changed": ["status"]},
    "model": {"model": "testapp.Order"},
    "model_miss": {"model": "testapp.Other"},
    "table_and_db": {"table": "testapp_order", "db": "default"},
    "decimal_as_string": {"new.total": "12.50"},
    "decimal_as_number": {"new.total": 12.5},
    "null": {"new.placed_at": None},
    "null_missing_key": {"new.absent": None},
    "deep_missing": {"new.status.deeper": {"exists": False}},
    "digits_path": {"new.status.0": {"exists": True}},
    "true_is_one": {"new.customer": True},
    "several": {"new.status": "paid", "old.status": {"ne": "paid"}, "pk": {"exists": True}},
}


def test_filters_select_the_same_triggers_in_both_modes(both_modes):
    for name, spec in FILTERS.items():
        TriggerFactory(name=name, type="DB_UPDATE", source="testapp.Order", filter=spec)
    both_modes()
    customer = Customer.objects.create(pk=1, name="one")
    order = Order.objects.create(status="new", quantity=2, total="12.50", customer=customer)
    order.status = "paid"
    order.save()
    fired = {"signals": set(), "database": set()}
    for row in EventLog.objects.all():
        fired["signals" if row.enqueued_at else "database"].add(row.trigger_name)
    assert fired["database"] == fired["signals"]
    assert fired["signals"] == {
        "scalar",
        "list",
        "in",
        "in_substring",
        "eq_number",
        "eq_float",
        "exists",
        "not_exists",
        "old_on_update",
        "model",
        "table_and_db",
        "decimal_as_string",
        "null",
        "deep_missing",
        "true_is_one",
        "several",
    }


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("new.char", "k" * 10),
        ("new.text", "long " * 50),  # stored hashed
        ("new.integer", 42),
        ("new.flag", True),
        ("new.maybe", None),  # no value: unordered
        ("new.absent", None),
        ("pk", None),
    ],
)
def test_both_modes_record_the_same_ordering_key(both_modes, path, value):
    TriggerFactory(name="keyed", type="DB_INSERT", source="testapp.Specimen", ordering_key=path)
    both_modes()
    owner, document = related()
    values = typical(owner, document)
    field = path.removeprefix("new.")
    if field in values:
        values[field] = value
    Specimen.objects.create(**values)

    keys = {
        "signals" if row.enqueued_at else "database": row.ordering_key
        for row in EventLog.objects.all()
    }
    assert keys["database"] == keys["signals"]
    if path != "pk" and value is None:
        assert keys["signals"] is None
    else:
        assert keys["signals"] is not None
