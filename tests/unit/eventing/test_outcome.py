"""The outcome rules and backoff, as pure functions."""

import datetime as dt
import random
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventing.delivery.backoff import backoff_delay, next_delay, parse_retry_after
from eventing.delivery.outcome import decide
from eventing.models import EventStatus
from eventing.webhooks.request import WebhookResponse

NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
TRIGGER = SimpleNamespace(
    retries=3, backoff_base_s=5.0, backoff_max_s=3600.0, retry_policy="transient", retry_statuses=[]
)


def outcome(status=None, error="", attempt=1, headers=None, trigger=TRIGGER):
    response = WebhookResponse(status_code=status, error=error, headers=headers or {})
    return decide(response, attempt=attempt, trigger=trigger, now=NOW, rng=random.Random(1))


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_any_2xx_succeeds(code):
    assert outcome(code).status == EventStatus.PROCESSED


@pytest.mark.parametrize("code", [301, 302, 408, 425, 429, 500, 503, 599])
def test_transient_failures_retry_under_the_default_policy(code):
    result = outcome(code)
    assert result.status == EventStatus.STAGED
    assert result.retry_in_s is not None
    assert f"HTTP {code}" in result.remark


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422, 451])
def test_other_4xx_fail_at_once_under_the_default_policy(code):
    result = outcome(code)
    assert result.status == EventStatus.FAILED
    assert result.gave_up
    assert result.retry_in_s is None
    assert f"{code} is not retried under the trigger's retry policy" in result.remark


@pytest.mark.parametrize("code", [301, 400, 404, 422, 500])
def test_retry_everything_retries_every_code(code):
    everything = SimpleNamespace(**{**vars(TRIGGER), "retry_policy": "all"})
    result = outcome(code, trigger=everything)
    assert result.status == EventStatus.STAGED
    assert result.retry_in_s is not None


def test_listed_policy_retries_only_its_statuses_and_transport_errors():
    listed = SimpleNamespace(**{**vars(TRIGGER), "retry_policy": "listed", "retry_statuses": [409]})
    assert outcome(409, trigger=listed).status == EventStatus.STAGED
    assert outcome(error="Timed out after 2 s", trigger=listed).status == EventStatus.STAGED
    assert outcome(500, trigger=listed).status == EventStatus.FAILED
    assert "500 is not retried" in outcome(500, trigger=listed).remark


def test_redirect_is_not_followed_and_says_so():
    result = outcome(302, headers={"Location": "https://elsewhere"})
    assert "redirect (not followed)" in result.remark


def test_connection_error_retries_like_5xx():
    result = outcome(error="ConnectionError: refused")
    assert result.status == EventStatus.STAGED
    assert "refused" in result.remark


def test_last_attempt_fails_and_gives_up():
    result = outcome(500, attempt=4)
    assert result.status == EventStatus.FAILED
    assert result.gave_up
    assert "attempt 4 of 4" in result.remark


def test_gone_fails_at_once_and_pauses():
    result = outcome(410, attempt=1)
    assert result.status == EventStatus.FAILED
    assert result.gave_up
    assert "410" in result.pause_reason


def test_permanent_refusal_does_not_retry():
    response = WebhookResponse(error="blocked address")
    result = decide(response, attempt=1, trigger=TRIGGER, now=NOW, permanent=True)
    assert result.status == EventStatus.FAILED


def test_backoff_doubles_with_jitter_and_cap():
    rng = random.Random(7)
    for attempt, base in [(1, 5), (2, 10), (3, 20), (4, 40)]:
        delay = backoff_delay(attempt, 5, 3600, rng)
        assert base * 0.8 <= delay <= base * 1.2
    assert backoff_delay(30, 5, 3600, rng) <= 3600


def test_retry_after_seconds_and_date():
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after("Fri, 27 Nov 2026 10:01:00 GMT", NOW) == 60
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_retry_after_is_a_floor_capped_at_max():
    assert next_delay(1, 1, 3600, 120, random.Random(1)) == 120
    assert next_delay(1, 1, 60, 120, random.Random(1)) == 60


def test_retry_after_applies_to_429_and_503_only():
    assert outcome(429, headers={"Retry-After": "100"}).retry_in_s == 100
    assert outcome(503, headers={"Retry-After": "100"}).retry_in_s == 100
    assert outcome(500, headers={"Retry-After": "100"}).retry_in_s < 10


@pytest.mark.parametrize(
    "value", ["²", "1²", "١٢", "-5", "1.5", "Mon, 01 Jan 99999 00:00:00 GMT", "\x00", " "]
)
def test_a_bad_retry_after_counts_as_absent(value):
    assert parse_retry_after(value, NOW) is None
    assert outcome(429, headers={"Retry-After": value}).retry_in_s < 10  # plain backoff


@given(st.text(max_size=60))
def test_no_retry_after_value_raises(value):
    seconds = parse_retry_after(value, NOW)
    assert seconds is None or seconds >= 0
    assert outcome(503, headers={"Retry-After": value}).status == EventStatus.STAGED


def reply(body: str, attempt: int = 1):
    response = WebhookResponse(status_code=200, body=body)
    return decide(response, attempt=attempt, trigger=TRIGGER, now=NOW, rng=random.Random(1))


def test_a_2xx_object_with_an_error_string_is_a_failed_attempt():
    result = reply('{"error": "out of stock", "response": null}')
    assert result.status == EventStatus.STAGED
    assert result.remark.startswith("HTTP 200 with error: out of stock; attempt 1 of 4, next in")
    last = reply('{"error": "out of stock"}', attempt=4)
    assert (last.status, last.gave_up) == (EventStatus.FAILED, True)


@pytest.mark.parametrize(
    "body",
    ['{"error": ""}', '{"error": null}', '{"error": {"code": 1}}', '["error"]', '"error"', "error"],
)
def test_a_2xx_without_an_error_string_succeeds(body):
    assert reply(body).status == EventStatus.PROCESSED
