"""Trigger and event type validation names the field at fault."""

import pytest
from django.core.exceptions import ValidationError

from eventing.conf import DEFAULTS
from triggers import defaults
from triggers.models import EventType, Trigger

pytestmark = pytest.mark.django_db


def make(**kwargs) -> Trigger:
    values = {"name": "t1", "type": "order_placed", "url": "https://example.com/hook"}
    values.update(kwargs)
    return Trigger(**values)


def error_fields(trigger) -> dict:
    with pytest.raises(ValidationError) as info:
        trigger.full_clean()
    return info.value.message_dict


def test_valid_custom_trigger_passes():
    make().full_clean()


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"type": "DB_INSERT", "source": "shop.Nope"}, "source", "not an installed model"),
        ({"type": "DB_INSERT", "source": ""}, "source", "not an installed model"),
        ({"type": "DB_INSERT", "source": "eventing.EventLog"}, "source", "cannot have DB"),
        ({"url": "ftp://example.com/x"}, "url", "http"),
        ({"url": "not a url"}, "url", "http"),
        ({"type": "DB_SOMETHING"}, "type", "reserved"),
        ({"type": "file_upload"}, "type", "reserved"),
        ({"type": "has space"}, "type", "letters"),
        ({"name": "bad-name"}, "name", "letters"),
        (
            {"type": "DB_UPDATE", "source": "testapp.Order", "watch_fields": ["nope"]},
            "watch_fields",
            "nope",
        ),
        (
            {"type": "DB_INSERT", "source": "testapp.Order", "payload_fields": ["total", "x"]},
            "payload_fields",
            "x",
        ),
        (
            {"type": "DB_INSERT", "source": "testapp.Order", "watch_fields": ["status"]},
            "watch_fields",
            "DB_UPDATE",
        ),
        ({"type": "FILE_CREATE", "source": "nowhere"}, "source", "storage alias"),
        ({"source": "testapp.Order"}, "source", "no source"),
        ({"headers": [{"name": "X-SC-Token", "value": "x"}]}, "headers", "set by Eventing"),
        ({"headers": [{"name": "X-A"}]}, "headers", "exactly one"),
        ({"headers": "nope"}, "headers", "list"),
        (
            {"send_authorization": True, "headers": [{"name": "authorization", "value": "x"}]},
            "headers",
            "send Authorization",
        ),
        ({"filter": ["x"]}, "filter", "object"),
        ({"filter": {"new.status": {"like": "x"}}}, "filter", "operators"),
        ({"backoff_base_s": 10, "backoff_max_s": 1}, "backoff_max_s", "at least"),
        ({"signing_secret": "plain"}, "signing_secret", "whsec_"),
        ({"timeout_ms": 0}, "timeout_ms", ""),
    ],
)
def test_bad_trigger_is_refused_naming_the_field(kwargs, field, words):
    errors = error_fields(make(**kwargs))
    assert field in errors
    assert words.lower() in " ".join(errors[field]).lower()


def test_db_trigger_source_is_normalised_to_the_model_label():
    trigger = make(type="DB_INSERT", source="testapp.order")
    trigger.full_clean()
    assert trigger.source == "testapp.Order"


def test_url_may_hold_env_placeholders():
    make(url="https://{{HOOK_HOST}}/path?key={{ HOOK_KEY }}").full_clean()


def test_file_trigger_takes_an_eventing_storage_alias():
    make(type="FILE_CREATE", source="evented_files", path_pattern="avatars/*.png").full_clean()
    make(type="FILE_DELETE", source="evented_memory").full_clean()


@pytest.mark.parametrize("kind", ["FILE_CREATE", "FILE_DELETE"])
def test_file_trigger_on_a_storage_that_is_not_wrapped_is_refused_on_source(kind):
    errors = error_fields(make(type=kind, source="default"))
    assert list(errors) == ["source"]
    assert "'default' is not wrapped in EventingStorage" in errors["source"][0]
    assert "eventing.storage.EventingStorage" in errors["source"][0]


def test_file_trigger_on_a_wrapped_storage_names_its_wrapper():
    errors = error_fields(make(type="FILE_CREATE", source="plain_files"))
    assert "use 'evented_files', which wraps it" in errors["source"][0]


def test_file_trigger_on_an_unknown_alias_lists_the_eventing_storages():
    errors = error_fields(make(type="FILE_CREATE", source="nowhere"))
    assert "choose one of evented_files, evented_memory" in errors["source"][0]


def test_new_trigger_gets_a_whsec_secret_and_defaults():
    trigger = make()
    assert trigger.signing_secret.startswith("whsec_")
    assert trigger.retries == 3
    assert trigger.timeout_ms == 5000
    assert make().signing_secret != trigger.signing_secret


def test_trigger_fallback_defaults_equal_eventing_defaults():
    for key, value in defaults.FALLBACKS.items():
        assert DEFAULTS[key] == value, key


def test_event_type_schema_must_be_a_valid_schema():
    with pytest.raises(ValidationError) as info:
        EventType(name="signup", schema={"type": "nonsense"}).full_clean()
    assert "schema" in info.value.message_dict
    EventType(name="signup", schema={"type": "object"}).full_clean()


def test_event_type_name_cannot_use_reserved_prefix():
    with pytest.raises(ValidationError) as info:
        EventType(name="DB_custom").full_clean()
    assert "name" in info.value.message_dict


@pytest.mark.parametrize("field", ["delay_s", "backoff_base_s", "backoff_max_s"])
def test_absurd_delays_are_refused(field):
    values = {"backoff_max_s": 1e12, field: 1e12}  # max ≥ base, so only the bound can fail
    assert field in error_fields(make(**values))


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"url": "https://example.com/a\r\nX-Injected: 1"}, "url", "'\\r'"),
        ({"url": "https://example.com/a\nb"}, "url", "'\\n'"),
        ({"url": "https://example.com/a b"}, "url", "spaces"),
        ({"headers": [{"name": "X-A", "value": "v\r\nX-B: 1"}]}, "headers", "'\\r'"),
        ({"headers": [{"name": "X-A", "value": "v\x00"}]}, "headers", "'\\x00'"),
        ({"headers": [{"name": "X-A", "value": "naïve ✓"}]}, "headers", "latin-1"),
        ({"headers": [{"name": "Host\n", "value": "evil"}]}, "headers", "not a valid header name"),
        ({"headers": [{"name": "X-A\n", "value": "v"}]}, "headers", "not a valid header name"),
        ({"headers": [{"name": "X-A", "value_from_env": "A\nB"}]}, "headers", "environment"),
        ({"signing_secret": "whsec_"}, "signing_secret", "24 to 64 bytes"),
        ({"signing_secret": "whsec_!!not base64!!"}, "signing_secret", "base64"),
        ({"signing_secret": "whsec_" + "QUFB" * 2}, "signing_secret", "holds 6"),
        ({"name": "t1\n"}, "name", "letters"),
        ({"type": "order_placed\n"}, "type", "letters"),
        ({"filter": {"new.status": "pa\x00id"}}, "filter", "NUL"),
    ],
)
def test_undeliverable_values_are_refused_naming_the_field(kwargs, field, words):
    errors = error_fields(make(**kwargs))
    assert field in errors, errors
    assert words.lower() in " ".join(errors[field]).lower()


def test_latin1_header_values_and_tabs_are_accepted():
    make(headers=[{"name": "X-A", "value": "caf\xe9\tau lait"}]).full_clean()


def test_event_type_name_with_a_trailing_newline_is_refused():
    with pytest.raises(ValidationError) as info:
        EventType(name="signup\n").full_clean()
    assert "name" in info.value.message_dict
