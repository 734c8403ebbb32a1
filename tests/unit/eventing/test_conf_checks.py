"""Settings and system checks."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from eventing.checks import check_settings
from eventing.conf import DEFAULTS, get_settings, settings


def test_defaults_apply():
    assert settings.TOKEN_TTL_S == DEFAULTS["TOKEN_TTL_S"] == 1800
    assert DEFAULTS["ETA_HORIZON_S"] == 300


def test_unknown_keys_are_an_error(settings):
    settings.EVENTING = {"SECRETS": ["x" * 40], "RETRYS": 3}
    with pytest.raises(ImproperlyConfigured, match="RETRYS"):
        get_settings()
    assert [e.id for e in check_settings()] == ["eventing.E001"]


def test_settings_change_is_picked_up(settings):
    settings.EVENTING = {"SECRETS": ["y" * 40], "DEFAULT_RETRIES": 9}
    from eventing.conf import settings as conf

    assert conf.DEFAULT_RETRIES == 9


def test_missing_secret_is_an_error(settings):
    settings.EVENTING = {"SECRETS": []}
    assert [e.id for e in check_settings()] == ["eventing.E002"]


def test_weak_secret_warns(settings):
    settings.EVENTING = {"SECRETS": ["short"]}
    assert [e.id for e in check_settings()] == ["eventing.W001"]


def test_good_settings_pass(settings):
    settings.EVENTING = {"SECRETS": ["z" * 40]}
    assert check_settings() == []


def test_unreachable_broker_warns():
    from config.celery import app
    from eventing.checks import check_broker

    keys = ("broker_url", "broker_write_url", "broker_transport")
    original = {key: app.conf[key] for key in keys}
    # Nothing listens on port 1; the URL picks the transport whatever the stack configured.
    app.conf.update(dict.fromkeys(keys[:2], "redis://127.0.0.1:1/0"), broker_transport=None)
    try:
        problems = check_broker()
    finally:
        app.conf.update(original)
    assert [p.id for p in problems] == ["eventing.W002"]
    assert "cannot be reached" in problems[0].msg


@pytest.mark.parametrize("name", ["DELIVERY_BATCH_SIZE", "SENDER_THREADS"])
@pytest.mark.parametrize("value", [0, -1, "5", True, 2.5, None])
def test_batch_settings_must_be_whole_numbers_of_at_least_one(settings, name, value):
    settings.EVENTING = {**settings.EVENTING, name: value}
    problems = check_settings()
    assert [p.id for p in problems] == ["eventing.E004"]
    assert name in problems[0].msg


@pytest.mark.parametrize("name", ["DELIVERY_BATCH_SIZE", "SENDER_THREADS"])
def test_one_is_a_valid_batch_setting(settings, name):
    settings.EVENTING = {**settings.EVENTING, name: 1}
    assert check_settings() == []


def test_a_batch_larger_than_one_statement_can_hold_is_refused(settings):
    settings.EVENTING = {**settings.EVENTING, "DELIVERY_BATCH_SIZE": 1001}
    [problem] = check_settings()
    assert problem.id == "eventing.E004"
    assert "between 1 and 1000" in problem.msg
    settings.EVENTING = {**settings.EVENTING, "DELIVERY_BATCH_SIZE": 1000}
    assert check_settings() == []
