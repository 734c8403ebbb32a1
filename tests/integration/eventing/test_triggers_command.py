"""`eventing_triggers export|import`: round trip, idempotent import, dry run, errors."""

from __future__ import annotations

import json
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from tests.factories import EventTypeFactory, TriggerFactory
from triggers.masking import MASK
from triggers.models import EventType, Trigger

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("eventing_triggers", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def defined():
    EventTypeFactory(name="order_placed", schema={"type": "object"}, queue_rule="authenticated")
    TriggerFactory(
        name="orders_hook",
        type="order_placed",
        url="https://h.example.com/{{HOOK_T}}",
        headers=[{"name": "X-Key", "value_from_env": "HOOK_KEY"}],
        send_authorization=True,
    )
    TriggerFactory(
        name="paid_orders",
        type="DB_UPDATE",
        source="testapp.Order",
        watch_fields=["status"],
        filter={"new.status": "paid"},
    )


def test_export_import_round_trip_is_idempotent(defined, tmp_path):
    path = tmp_path / "triggers.json"
    run("export", "-o", str(path))
    data = json.loads(path.read_text())
    assert [t["name"] for t in data["triggers"]] == ["orders_hook", "paid_orders"]
    assert "signing_secret" not in data["triggers"][0]
    assert data["event_types"][0]["schema"] == {"type": "object"}
    secret = Trigger.objects.get(name="orders_hook").signing_secret

    Trigger.objects.all().delete()
    EventType.objects.all().delete()
    report = run("import", str(path))
    assert "event types: 1 created, 0 updated, 0 unchanged" in report
    assert "triggers: 2 created, 0 updated, 0 unchanged" in report
    restored = Trigger.objects.get(name="paid_orders")
    assert restored.watch_fields == ["status"]
    assert restored.filter == {"new.status": "paid"}
    assert Trigger.objects.get(name="orders_hook").signing_secret != secret  # a fresh one
    assert Trigger.objects.get(name="orders_hook").send_authorization is True
    assert restored.send_authorization is False

    again = run("import", str(path))
    assert "triggers: 0 created, 0 updated, 2 unchanged" in again
    assert "event types: 0 created, 0 updated, 1 unchanged" in again


def test_import_updates_and_dry_run_changes_nothing(defined, tmp_path):
    path = tmp_path / "triggers.yaml"
    run("export", "-o", str(path))
    data = yaml.safe_load(path.read_text())
    data["triggers"][0]["retries"] = 9
    data["triggers"].append(
        {"name": "new_hook", "type": "order_placed", "url": "https://n.example.com/"}
    )
    path.write_text(yaml.safe_dump(data))

    dry = run("import", str(path), "--dry-run")
    assert "Would have updated trigger orders_hook" in dry
    assert "Would have created trigger new_hook" in dry
    assert "Dry run: nothing was changed." in dry
    assert Trigger.objects.get(name="orders_hook").retries == 2
    assert not Trigger.objects.filter(name="new_hook").exists()

    report = run("import", str(path))
    assert "updated trigger orders_hook" in report
    assert "triggers: 1 created, 1 updated, 1 unchanged" in report
    assert Trigger.objects.get(name="orders_hook").retries == 9


def test_invalid_entry_names_it_and_imports_nothing(defined, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "triggers": [
                    {"name": "ok_hook", "type": "order_placed", "url": "https://ok.example.com/"},
                    {"name": "bad_hook", "type": "order_placed", "url": "ftp://nope"},
                ]
            }
        )
    )
    with pytest.raises(CommandError, match=r"triggers\[1\] \(bad_hook\): url:"):
        run("import", str(path))
    assert not Trigger.objects.filter(name="ok_hook").exists()
    path.write_text('{"triggers": [{"name": "x", "colour": "red"}]}')
    with pytest.raises(CommandError, match="unknown field"):
        run("import", str(path))
    path.write_text("{not json")
    with pytest.raises(CommandError, match="not valid json"):
        run("import", str(path))


def test_secrets_only_on_request(defined):
    data = json.loads(run("export", "--include-secrets"))
    assert data["triggers"][0]["signing_secret"].startswith("whsec_")


LITERAL_AUTH = "Bearer literal-export-secret-5c1e"


@pytest.fixture
def with_literal_headers():
    return TriggerFactory(
        name="literal_hook",
        headers=[
            {"name": "Authorization", "value": LITERAL_AUTH},
            {"name": "X-Tenant", "value": "tenant-acme-77"},
            {"name": "X-Key", "value_from_env": "HOOK_KEY"},
        ],
    )


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_literal_header_values_are_masked_unless_asked_for(with_literal_headers, fmt):
    masked = run("export", "--format", fmt)
    assert LITERAL_AUTH.split()[1] not in masked
    assert "tenant-acme-77" not in masked
    assert "signing_secret" not in masked
    data = json.loads(masked) if fmt == "json" else yaml.safe_load(masked)
    assert data["triggers"][0]["headers"] == [
        {"name": "Authorization", "value": MASK},
        {"name": "X-Tenant", "value": MASK},
        {"name": "X-Key", "value_from_env": "HOOK_KEY"},
    ]
    full = run("export", "--format", fmt, "--include-secrets")
    assert LITERAL_AUTH in full
    assert "tenant-acme-77" in full


def test_a_masked_export_imports_back_keeping_the_stored_values(with_literal_headers, tmp_path):
    path = tmp_path / "triggers.json"
    run("export", "-o", str(path))
    assert "triggers: 0 created, 0 updated, 1 unchanged" in run("import", str(path))
    data = json.loads(path.read_text())
    data["triggers"][0]["retries"] = 7
    path.write_text(json.dumps(data))
    run("import", str(path))
    stored = Trigger.objects.get(name="literal_hook")
    assert stored.retries == 7
    assert stored.headers[0] == {"name": "Authorization", "value": LITERAL_AUTH}

    # Elsewhere (no stored value to keep) the mask is an error naming the entry and header.
    stored.delete()
    with pytest.raises(CommandError, match=r"triggers\[0\] \(literal_hook\): headers\[0\]: enter"):
        run("import", str(path))
    assert not Trigger.objects.filter(name="literal_hook").exists()


def test_cron_and_actor_fields_round_trip(tmp_path):
    TriggerFactory(
        name="nightly",
        type="CRON",
        cron_expression="0 3 * * *",
        cron_timezone="Asia/Tokyo",
        cron_payload={"job": "cleanup"},
        cron_skip_missed=True,
    )
    TriggerFactory(name="quiet", type="DB_INSERT", source="testapp.Order", send_actor=False)
    path = tmp_path / "triggers.json"
    run("export", "-o", str(path))
    Trigger.objects.all().delete()
    run("import", str(path))

    nightly = Trigger.objects.get(name="nightly")
    assert (nightly.type, nightly.cron_expression, nightly.cron_timezone) == (
        "CRON",
        "0 3 * * *",
        "Asia/Tokyo",
    )
    assert nightly.cron_payload == {"job": "cleanup"}
    assert nightly.cron_skip_missed is True
    assert Trigger.objects.get(name="quiet").send_actor is False
