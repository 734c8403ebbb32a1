"""Settings and system checks."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from eventing.checks import VALUE_ERROR_IDS, check_settings
from eventing.conf import DEFAULTS, RULES, TUNING, get_settings, settings


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


def test_every_key_is_declared_with_a_rule_its_default_passes():
    assert set(RULES) == set(DEFAULTS)
    assert set(TUNING) <= set(DEFAULTS)
    for key, default in DEFAULTS.items():
        assert RULES[key].accepts(default), key


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SECRETS", "one-secret-not-a-list"),
        ("SECRETS", ["ok" * 20, 42]),
        ("ETA_HORIZON_S", "300"),
        ("ETA_HORIZON_S", -1),
        ("SWEEP_INTERVAL_S", 0),
        ("TOKEN_TTL_S", 1.5),
        ("DEFAULT_RETRIES", 101),
        ("CAPTURE", "triggers"),
        ("PUBLISH_IN_BACKGROUND", "yes"),
        ("RETENTION", {"processed": 7, "archived": 3}),
        ("RETENTION", {"failed": "30"}),
        ("THROTTLE_RATES", {"eventing": "lots"}),
        ("WORKER_METRICS_PORT", 70000),
        ("INSTANCE_ID", ""),
        ("MAX_PAYLOAD_BYTES", True),
    ],
)
def test_a_value_a_key_does_not_accept_is_refused_naming_the_key(settings, key, value):
    settings.EVENTING = {**settings.EVENTING, key: value}
    with pytest.raises(ImproperlyConfigured, match=f'EVENTING\\["{key}"\\] must be'):
        get_settings()
    [problem] = check_settings()
    assert problem.id == VALUE_ERROR_IDS.get(key, "eventing.E004")
    assert key in problem.msg


def test_allowed_networks_must_be_cidrs(settings):
    settings.EVENTING = {**settings.EVENTING, "ALLOWED_NETWORKS": ["10.0.0.0/8", "intranet"]}
    [problem] = check_settings()
    assert problem.id == "eventing.E003"
    assert "CIDRs" in problem.msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SECRETS", ("x" * 40,)),
        ("ETA_HORIZON_S", 12.5),
        ("RETENTION", {"processed": None}),
        ("THROTTLE_RATES", {"eventing_queue": "100/min", "eventing": None}),
        ("DISABLE_AFTER_S", None),
        ("ALLOWED_NETWORKS", ["127.0.0.0/8", "::1"]),
    ],
)
def test_values_of_the_right_type_pass(settings, key, value):
    settings.EVENTING = {**settings.EVENTING, key: value}
    assert getattr(get_settings(), key) == value
    assert check_settings() == []
