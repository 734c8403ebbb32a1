"""`eventing_triggers import --from-space-cloud`: rows, mapped fields, the report, dry run,
strict mode, idempotent re-import, refusals naming the field."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tests.processes import ROOT
from triggers.models import EventType, Trigger
from triggers.sdl import sdl_to_json_schema

pytestmark = pytest.mark.django_db

SAMPLES = ROOT / "tests" / "space_cloud"
EXPORT = SAMPLES / "eventing.yaml"  # what `space-cli get all` prints
GATEWAY_CONFIG = SAMPLES / "config.json"  # a gateway config file with one project
QUEUE_URL = "/v1/api/default/eventing/queue"
IMPORTED = [
    "avatar_uploaded",
    "customer_updated",
    "file_removed",
    "order_created",
    "order_deleted",
    "order_placed_hook",
]


# The sample's FILE triggers go to a storage wrapped in EventingStorage (tests/settings.py).
FROM_EXPORT = ("--from-space-cloud", str(EXPORT), "--file-storage", "evented_files")


def run(*args: str) -> str:
    out = StringIO()
    call_command("eventing_triggers", "import", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def write(tmp_path: Path, documents: list[dict]) -> str:
    path = tmp_path / "export.yaml"
    path.write_text("---\n".join(yaml.safe_dump(doc) for doc in documents))
    return str(path)


def trigger_doc(trigger_id: str, **spec) -> dict:
    """One trigger as space-cli prints it."""
    return {
        "api": "/v1/config/projects/{project}/eventing/triggers/{id}",
        "type": "eventing-trigger",
        "meta": {"id": trigger_id, "project": "shop"},
        "spec": spec,
    }


def test_every_mapped_field_lands_in_its_row():
    report = run(*FROM_EXPORT)
    assert sorted(Trigger.objects.values_list("name", flat=True)) == IMPORTED
    rows = {t.name: t for t in Trigger.objects.all()}

    created = rows["order_created"]  # meta.id order-created: hyphen is not a name character
    assert (created.type, created.source) == ("DB_INSERT", "testapp.Order")  # db/col → model
    assert created.url == "http://orders.internal:8080/v1/order-created"
    assert (created.retries, created.timeout_ms) == (3, 5000)  # 0 is Space Cloud's default
    assert created.enabled
    assert created.signing_secret.startswith("whsec_")
    assert created.send_authorization  # Space Cloud sends its token as Authorization too
    updated = rows["customer_updated"]
    assert (updated.type, updated.source) == ("DB_UPDATE", "testapp.Customer")
    assert (updated.retries, updated.timeout_ms) == (5, 3000)
    assert (rows["order_deleted"].type, rows["order_deleted"].timeout_ms) == ("DB_DELETE", 10000)
    assert (rows["avatar_uploaded"].type, rows["avatar_uploaded"].source) == (
        "FILE_CREATE",
        "evented_files",
    )
    assert rows["file_removed"].type == "FILE_DELETE"
    custom = rows["order_placed_hook"]
    assert (custom.type, custom.source, custom.retries) == ("order_placed", "", 4)

    types = {t.name: t for t in EventType.objects.all()}
    assert {name: t.queue_rule for name, t in types.items()} == {
        "audit_note": "deny",
        "default": "authenticated",
        "order_placed": "allow",
        "refund_requested": "deny",  # a `match` rule has no equivalent: reported, denied
        "shipment_sent": "authenticated",  # schema only: Space Cloud applies the default rule
    }
    sdl = yaml.safe_load_all(EXPORT.read_text())
    order_sdl = next(
        d for d in sdl if d["meta"].get("id") == "order_placed" and "schema" in d["spec"]
    )
    assert types["order_placed"].schema == sdl_to_json_schema(
        order_sdl["spec"]["schema"], "order_placed"
    )
    assert types["shipment_sent"].schema["required"] == ["order_id"]
    assert types["refund_requested"].schema is None  # its SDL has a union: reported

    assert "note: trigger order-created is named order_created" in report
    assert "note: ignored /v1/config/projects/{project}/database/" in report
    assert "triggers: 6 created, 0 updated, 0 unchanged" in report
    assert "event types: 5 created, 0 updated, 0 unchanged" in report


def test_every_unmapped_field_is_reported():
    report = run(*FROM_EXPORT)
    unmapped = [line for line in report.splitlines() if line.startswith("not mapped: ")]
    expected = [
        "rule refund_requested: rule: 'match' (with eval, f1, f2, type)",
        "schema refund_requested: schema: not imported: UnionTypeDefinition reason",
        "trigger legacy_sync: options.col: no installed model has the table 'legacy_accounts'",
        "trigger order_deleted: filter:",
        "trigger order_placed_hook: options.source:",
        "trigger order_placed_hook: claims:",
        "trigger order_placed_hook: outputFormat:",
        "trigger order_placed_hook: requestTemplate:",
        "trigger order_placed_hook: template:",
        "config: dbAlias: 'db'",
    ]
    assert len(unmapped) == len(expected)
    for line, start in zip(unmapped, expected, strict=True):
        assert line.startswith(f"not mapped: {start}"), line
    assert "Space Cloud: 10 field(s) not mapped." in report
    assert not Trigger.objects.filter(name="legacy_sync").exists()


def test_dry_run_creates_nothing():
    report = run(*FROM_EXPORT, "--dry-run")
    assert "Would have created trigger order_created" in report
    assert "Would have created event type order_placed" in report
    assert "not mapped: trigger legacy_sync" in report
    assert "Dry run: nothing was changed." in report
    assert not Trigger.objects.exists()
    assert not EventType.objects.exists()


def test_reimport_is_idempotent_and_restores_what_the_file_says():
    run(*FROM_EXPORT)
    secrets = dict(Trigger.objects.values_list("name", "signing_secret"))
    again = run(*FROM_EXPORT)
    assert "triggers: 0 created, 0 updated, 6 unchanged" in again
    assert "event types: 0 created, 0 updated, 5 unchanged" in again
    assert dict(Trigger.objects.values_list("name", "signing_secret")) == secrets

    Trigger.objects.filter(name="customer_updated").update(retries=9, description="kept")
    third = run(*FROM_EXPORT)
    assert "updated trigger customer_updated" in third
    assert "triggers: 0 created, 1 updated, 5 unchanged" in third
    row = Trigger.objects.get(name="customer_updated")
    assert (row.retries, row.description) == (5, "kept")  # fields Space Cloud has no say in stay


def test_strict_imports_nothing_and_fails_when_something_is_unmapped(tmp_path):
    with pytest.raises(CommandError, match=r"10 Space Cloud field\(s\) could not be mapped"):
        run(*FROM_EXPORT, "--strict")
    assert not Trigger.objects.exists()
    assert not EventType.objects.exists()

    clean = write(
        tmp_path,
        [
            trigger_doc(
                "paid",
                type="DB_UPDATE",
                url="https://h.example.com/",
                retries=2,
                timeout=1000,
                options={"db": "db", "col": "testapp_order"},
            ),
            {
                "api": "/v1/config/projects/{project}/eventing/rules/{id}",
                "type": "eventing-rule",
                "meta": {"id": "default", "project": "shop"},
                "spec": {"rule": "allow"},
            },
        ],
    )
    report = run("--from-space-cloud", clean, "--strict")
    assert "Space Cloud: 0 field(s) not mapped." in report
    assert Trigger.objects.get(name="paid").source == "testapp.Order"
    assert EventType.objects.get(name="default").queue_rule == "allow"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "order_placed", "url": "ftp://nope", "timeout": 1000}, r"\(bad\): url:"),
        (
            {"type": "order_placed", "url": "https://h.example.com/", "timeout": 900_000},
            r"\(bad\): timeout_ms:",
        ),
        (
            {"type": "order_placed", "url": "https://h.example.com/", "retries": -1},
            r"\(bad\): retries:",
        ),
        ({"type": "DB_MERGE", "url": "https://h.example.com/"}, r"\(bad\): type:"),
        ({"type": "FILE_CREATE", "url": "https://h.example.com/"}, r"\(bad\): source:"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_imports_nothing(tmp_path, spec, message):
    path = write(
        tmp_path,
        [
            trigger_doc("good", type="order_placed", url="https://ok.example.com/"),
            trigger_doc("bad", **spec),
        ],
    )
    args = ["--from-space-cloud", path]
    if spec["type"] == "FILE_CREATE":
        args += ["--file-storage", "no_such_storage"]
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not Trigger.objects.exists()


def test_file_storage_alias_and_shapes_that_are_not_an_export(tmp_path):
    path = write(tmp_path, [trigger_doc("pics", type="FILE_CREATE", url="https://h.example.com/")])
    run("--from-space-cloud", path, "--file-storage", "evented_files")
    assert Trigger.objects.get(name="pics").source == "evented_files"

    not_export = tmp_path / "other.json"
    not_export.write_text(json.dumps({"event_types": [], "triggers": []}))
    with pytest.raises(CommandError, match="neither a space-cli object"):
        run("--from-space-cloud", str(not_export))
    two = tmp_path / "two.json"
    two.write_text(json.dumps({"projects": {"a": {}, "b": {}}}))
    with pytest.raises(CommandError, match="holds 2 projects"):
        run("--from-space-cloud", str(two))


def test_gateway_config_json_is_read_too():
    report = run("--from-space-cloud", str(GATEWAY_CONFIG))
    rows = {t.name: t for t in Trigger.objects.all()}
    assert sorted(rows) == ["order_created", "order_placed_hook"]
    assert rows["order_created"].source == "testapp.Order"
    assert (rows["order_created"].retries, rows["order_created"].timeout_ms) == (3, 5000)
    assert {t.name: t.queue_rule for t in EventType.objects.all()} == {
        "default": "deny",
        "order_placed": "allow",
    }
    assert "not mapped: trigger order_placed_hook: template:" in report
    assert "not mapped: trigger order_placed_hook: requestTemplate:" in report
    assert "Space Cloud: 3 field(s) not mapped." in report  # + config.dbAlias; empty ones skipped


def test_an_imported_schema_governs_the_queue_endpoint():
    run("--from-space-cloud", str(GATEWAY_CONFIG))
    client = APIClient()
    ok = client.post(QUEUE_URL, {"type": "order_placed", "payload": {"order_id": 7}}, "json")
    assert 200 <= ok.status_code < 300, ok.json()
    bad = client.post(
        QUEUE_URL, {"type": "order_placed", "payload": {"order_id": "7", "x": 1}}, "json"
    )
    assert bad.status_code == 400
    assert "payload" in json.dumps(bad.json())
