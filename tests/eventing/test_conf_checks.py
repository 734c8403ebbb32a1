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

    keys = ("broker_url", "broker_write_url")
    original = {key: app.conf[key] for key in keys}
    app.conf.update(dict.fromkeys(keys, "redis://127.0.0.1:1/0"))  # nothing listens on port 1
    try:
        problems = check_broker()
    finally:
        app.conf.update(original)
    assert [p.id for p in problems] == ["eventing.W002"]
    assert "cannot be reached" in problems[0].msg
