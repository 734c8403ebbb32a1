"""CRON bounds: an impossible schedule is refused on save, and a stored one harms no other."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from eventing.capture import cron
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.integration.mission_control.test_forms import form
from tests.support.api_fixtures import TRIGGERS_URL
from triggers.models import Trigger

# February never has a 31st, April never a 31st, and a Monday the 29th of February is only
# reached in 2044 (more than five years out): none has a run in the next five years.
IMPOSSIBLE = ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4 *", "0 0 29 2 1#5"]


def cron_body(expression: str) -> dict:
    return {
        "name": "nightly",
        "type": "CRON",
        "url": "http://127.0.0.1:9/cron",
        "cron_expression": expression,
    }


@pytest.mark.django_db
@pytest.mark.parametrize("expression", IMPOSSIBLE)
def test_an_expression_with_no_run_in_five_years_is_refused_by_the_api(staff, expression):
    """Attack: POST a CRON trigger `0 0 31 2 *`; it was accepted (201) and later broke the beat.

    Now it answers 400 naming `cron_expression`, and nothing is stored.
    """
    response = staff.post(TRIGGERS_URL, cron_body(expression), format="json")
    assert response.status_code == 400, response.content
    [message] = response.json()["fields"]["cron_expression"]
    assert "no run in the next 5 years" in message
    assert not Trigger.objects.filter(name="nightly").exists()


@pytest.mark.django_db
def test_mission_control_refuses_it_on_its_field():
    """The same attack through the admin's trigger form."""
    f = form(kind="CRON", custom_type="", cron_expression="0 0 31 2 *")
    assert not f.is_valid()
    assert "no run in the next 5 years" in str(f.errors["cron_expression"])
    assert not Trigger.objects.exists()


@pytest.mark.django_db
def test_an_import_refuses_it_naming_the_trigger_and_field(tmp_path):
    """The same attack through `eventing_triggers import`: nothing is imported."""
    path = tmp_path / "triggers.json"
    path.write_text(json.dumps({"version": 1, "triggers": [cron_body("0 0 31 2 *")]}))
    with pytest.raises(CommandError, match=r"nightly.*cron_expression.*no run in the next 5"):
        call_command("eventing_triggers", "import", str(path), stdout=StringIO(), stderr=StringIO())
    assert not Trigger.objects.exists()


@pytest.mark.django_db
def test_a_rare_but_reachable_expression_is_accepted(staff):
    """The 29th of February comes within five years: the bound refuses only the impossible."""
    response = staff.post(TRIGGERS_URL, cron_body("0 0 29 2 *"), format="json")
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_a_stored_impossible_schedule_never_stops_another_triggers_ticks():
    """Attack: `0 0 31 2 *` stored (before this check existed); no CRON trigger fired at all.

    The beat now handles each trigger on its own: the good one fires, the bad one is logged.
    """
    bad = TriggerFactory(type="CRON", cron_expression="* * * * *", name="bad_schedule")
    good = TriggerFactory(type="CRON", cron_expression="* * * * *", name="every_minute")
    # Stored as older code stored it: no validation on the way in.
    Trigger.objects.filter(pk=bad.pk).update(cron_expression="0 0 31 2 *")
    now = timezone.now() + dt.timedelta(days=1)

    result = cron.fire_due_ticks(now)

    assert result.fired == 1
    assert EventLog.objects.filter(trigger=good, type="CRON").count() == 1
    assert not EventLog.objects.filter(trigger=bad).exists()


@pytest.mark.django_db
def test_a_stored_unknown_timezone_never_stops_another_triggers_ticks(caplog):
    """A stored schedule the beat cannot read at all is logged by name, and the others fire."""
    bad = TriggerFactory(type="CRON", cron_expression="* * * * *", name="bad_zone")
    good = TriggerFactory(type="CRON", cron_expression="* * * * *", name="every_minute")
    Trigger.objects.filter(pk=bad.pk).update(cron_timezone="Mars/Olympus")

    result = cron.fire_due_ticks(timezone.now() + dt.timedelta(days=1))

    assert (result.fired, result.failed) == (1, 1)
    assert EventLog.objects.filter(trigger=good).count() == 1
    assert "bad_zone" in caplog.text


@pytest.mark.django_db
def test_the_trigger_list_and_page_show_a_stored_impossible_schedule_as_an_error(admin_client):
    """Attack: with `0 0 31 2 *` stored, the Mission Control trigger list answered 500.

    Now the list and the trigger's page answer 200 and show the error on that trigger only.
    """
    bad = TriggerFactory(type="CRON", cron_expression="* * * * *", name="bad_schedule")
    TriggerFactory(type="CRON", cron_expression="30 8 * * *", name="morning")
    Trigger.objects.filter(pk=bad.pk).update(cron_expression="0 0 31 2 *")

    listing = admin_client.get("/mission-control/triggers/trigger/")
    assert listing.status_code == 200
    assert b"schedule error" in listing.content
    assert b"08:30:00" in listing.content  # the other trigger's next run is still shown
    page = admin_client.get(f"/mission-control/triggers/trigger/{bad.pk}/change/")
    assert page.status_code == 200
    assert b"no run in the next 5 years" in page.content
