"""Property tests of emit(): any payload is delivered as equivalent JSON or refused by name."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus
from eventing.recording.payload_rules import MAX_DEPTH
from tests.factories import TriggerFactory

# Every code point, lone surrogates and NUL included: the refusals are part of the property.
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=30)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(ANY_TEXT, children, max_size=5)
    ),
    max_leaves=30,
)


def as_numbers(raw: bytes | str):
    """Parse JSON with every number as a Decimal: 1e300 and 10**300 are the same number."""
    return json.loads(raw, parse_float=Decimal, parse_int=Decimal)


def normal(value):
    """`value` as as_numbers would read it back, for comparing what was sent and delivered."""
    return as_numbers(json.dumps(value, ensure_ascii=False))


def acceptable(value, depth: int = 0) -> bool:
    """The rules, restated independently: JSON only, finite, encodable, no NUL, not too deep."""
    if depth == 0 and value is None:
        return False  # a payload is required ({} for none)
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return len(str(abs(value))) <= 4300
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, list):
        return all(acceptable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(acceptable(k) and acceptable(v, depth + 1) for k, v in value.items())
    return value is None or isinstance(value, bool)


@pytest.fixture
def hook(db, receiver):
    """A custom-event trigger pointing at the real receiver."""
    return TriggerFactory(type="prop_event", retries=0, url=receiver.url("/ok/prop"))


@pytest.mark.slow
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=JSONISH)
@example(payload=float("nan"))
@example(payload={"a": float("inf")})
@example(payload="\x00")
@example(payload="\ud800")
@example(payload=2**200)
@example(payload=1e300)
@example(payload=-0.0)
@example(payload=5e-324)
@example(payload={"": [None, "", {}, []]})
@example(payload="")
def test_payload_is_delivered_equivalent_or_refused_by_name(hook, receiver, payload):
    if not acceptable(payload):
        with pytest.raises(ValidationError) as info:
            emit("prop_event", payload)
        assert "payload" in info.value.message_dict
        return
    [event] = emit("prop_event", payload)
    result = deliver_event(event.id)
    assert result.outcome.status == EventStatus.PROCESSED, result.response.error
    got = receiver.on("/ok/prop")[-1]
    assert got.headers["webhook-id"] == str(event.id)
    # The bytes that arrived are the bytes signed, and they hold the payload unchanged.
    Webhook(hook.signing_secret).verify(got.body, got.headers)
    assert as_numbers(got.body)["data"] == normal(payload)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (float("nan"), "NaN"),
        ({"deep": {"er": float("-inf")}}, "payload.deep.er"),
        ({"name": "a\x00b"}, "NUL"),
        (["ok", "\udfff"], "payload[1]"),
        ({1: "x"}, "keys must be strings"),
        ({"when": {1, 2}}, "set is not a JSON value"),
        (10**5000, "cannot be encoded"),
        (None, "send {}"),
    ],
    ids=["nan", "inf", "nul", "surrogate", "int-key", "set", "huge-int", "null"],
)
def test_refusals_name_the_problem(payload, words):
    with pytest.raises(ValidationError) as info:
        emit("prop_event", payload)
    message = " ".join(info.value.message_dict["payload"])
    assert words in message


@pytest.mark.django_db
def test_nesting_limit():
    payload: list = []
    for _ in range(MAX_DEPTH):
        payload = [payload]
    emit("prop_event", payload)  # at the limit: accepted
    with pytest.raises(ValidationError, match="deeper than"):
        emit("prop_event", [payload])


@pytest.mark.django_db
def test_size_limit(settings, hook):
    settings.EVENTING = {**settings.EVENTING, "MAX_PAYLOAD_BYTES": 1000}
    fits = "x" * 998  # two quotes make 1000 bytes
    assert len(emit("prop_event", fits)) == 1
    with pytest.raises(ValidationError) as info:
        emit("prop_event", fits + "é")  # one character, two bytes in UTF-8
    assert "1002 bytes" in info.value.message_dict["payload"][0]
    assert "MAX_PAYLOAD_BYTES" in info.value.message_dict["payload"][0]
    assert EventLog.objects.count() == 1  # nothing recorded for the refused one
