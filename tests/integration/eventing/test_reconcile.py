"""`eventing_reconcile`: rows changed since T without an event of the trigger are found by their
auto_now field, counted in a dry run, sent as MANUAL events with --yes (exactly those rows),
and a second run sends nothing."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models.functions import Now
from django.utils import timezone

from eventing.capture import reconcile
from eventing.capture.missed_writes import MissedWriteWarning
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.testapp.models import Order, Specimen
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("eventing_reconcile", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def scene(deliver_messages):
    """Rows changed before and after T, by save() (an event) and by writes signals miss."""
    long_ago = timezone.now() - dt.timedelta(days=2)
    old, saved, updated, bulk, raw = (Specimen.objects.create(char=c) for c in "abcde")
    # Before any trigger exists: set the past without a missed write to report.
    Specimen.objects.update(updated=long_ago)
    TriggerFactory(name="specimen_sync", type="DB_UPDATE", source="testapp.Specimen")
    since = timezone.now() - dt.timedelta(hours=1)

    saved.char = "saved"
    saved.save()
    with pytest.warns(MissedWriteWarning, match=r"QuerySet\.update\(\)"):
        Specimen.objects.filter(pk=updated.pk).update(char="updated", updated=Now())
    bulk.char, bulk.updated = "bulk", timezone.now()
    with pytest.warns(MissedWriteWarning, match=r"bulk_update\(\)"):
        Specimen.objects.bulk_update([bulk], ["char", "updated"])
    with pytest.warns(MissedWriteWarning, match="raw SQL"), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE testapp_specimen SET char = %s, updated = %s WHERE id = %s",
            ["raw", timezone.now(), raw.pk],
        )
    return {"since": since, "missed": sorted([updated.pk, bulk.pk, raw.pk]), "saved": saved}


def sync_trigger() -> Trigger:
    return Trigger.objects.get(name="specimen_sync")


def manual_pks() -> list:
    return sorted(e.payload["pk"] for e in EventLog.objects.filter(type="MANUAL"))


def test_dry_run_counts_and_sends_nothing(scene):
    out = run("specimen_sync", "--since", "1h")
    assert "3 of 4 rows changed since" in out
    assert "Dry run: nothing sent" in out
    for pk in scene["missed"]:
        assert str(pk) in out
    assert manual_pks() == []


def test_yes_sends_exactly_the_rows_without_events_and_a_second_run_sends_nothing(scene):
    assert EventLog.objects.filter(type="DB_UPDATE").count() == 1  # the save()

    out = run("specimen_sync", "--since", "1h", "--yes", "--batch-size", "2")
    assert "3 of 4 rows" in out
    assert "3 MANUAL events recorded" in out
    assert manual_pks() == scene["missed"]
    event = EventLog.objects.filter(type="MANUAL").first()
    assert event.trigger_name == "specimen_sync"
    assert event.payload["model"] == "testapp.Specimen"
    assert event.payload["old"] is None
    assert event.payload["new"]["char"] in ("updated", "bulk", "raw")
    assert event.idempotency_key.startswith("backfill:reconcile-")

    again = run("specimen_sync", "--since", "1h", "--yes")
    assert "0 of 4 rows" in again
    assert manual_pks() == scene["missed"]


def test_a_row_changed_again_after_its_event_is_missing_again(scene):
    run("specimen_sync", "--since", "1h", "--yes")
    later = timezone.now() + dt.timedelta(seconds=30)
    with pytest.warns(MissedWriteWarning):
        Specimen.objects.filter(pk=scene["saved"].pk).update(updated=later)
    assert reconcile.reconcile(sync_trigger(), scene["since"]).missing == 1


def test_batches_bound_what_is_read(scene):
    seen = []
    result = reconcile.reconcile(
        sync_trigger(), scene["since"], batch_size=1, on_batch=lambda r: seen.append(r.checked)
    )
    assert seen == [1, 2, 3, 4]
    assert (result.checked, result.missing, result.sent) == (4, 3, 0)


def test_a_model_without_auto_now_is_refused_naming_the_option(deliver_messages):
    TriggerFactory(name="orders_sync", type="DB_UPDATE", source="testapp.Order")
    with pytest.raises(CommandError, match="testapp.Order has no auto_now.*--field"):
        run("orders_sync", "--since", "1d")
    with pytest.raises(CommandError, match="'status' is not a date-time field"):
        run("orders_sync", "--since", "1d", "--field", "status")


def test_field_picks_another_timestamp(deliver_messages):
    TriggerFactory(name="orders_sync", type="DB_UPDATE", source="testapp.Order")
    Order.objects.bulk_create([Order(placed_at=timezone.now()), Order()])
    out = run("orders_sync", "--since", "1d", "--field", "placed_at", "--yes")
    assert "1 of 1 rows" in out
    assert len(manual_pks()) == 1


def test_bad_arguments_are_refused_by_name(deliver_messages):
    TriggerFactory(name="gone_sync", type="DB_DELETE", source="testapp.Specimen")
    with pytest.raises(CommandError, match="DB_DELETE trigger: deleted rows are gone"):
        run("gone_sync", "--since", "1d")
    with pytest.raises(CommandError, match="No trigger named 'nope'"):
        run("nope", "--since", "1d")
    with pytest.raises(CommandError, match="--since: cannot read"):
        run("gone_sync", "--since", "yesterday-ish")
    with pytest.raises(CommandError, match="give one of them"):
        run("gone_sync", "--since", "1d", "--yes", "--dry-run")
