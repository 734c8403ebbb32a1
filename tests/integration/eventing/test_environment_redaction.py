"""Environment values reach the receiver when the worker sends, and no stored request."""

from __future__ import annotations

import json

import pytest

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import InvocationLog
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db

SECRET = "redis://:sw0rdfish-not-for-logs@cache.internal:6379/0"


def test_invocation_log_redacts_environment_values(receiver, monkeypatch):
    """Attack: `base_url` (placeholders resolved) echoed into a templated URL, a header and the
    body; the invocation log, readable by the read-only operators, kept the value."""
    monkeypatch.setenv("HOOK_CACHE_URL", SECRET)
    trigger = TriggerFactory(
        type="env_echo",
        url=receiver.url("/ok?c={{HOOK_CACHE_URL}}"),
        transform_url="{{ base_url }}&n={{ data.n }}",
        transform_headers={"X-Echo": "{{ base_url }}"},
        transform_body='{"echo": {{ base_url | tojson }}}',
    )
    event = emit("env_echo", {"n": 1})[0]

    assert deliver_event(event.id, trigger.pk).outcome.succeeded

    sent = receiver.requests[0]
    assert SECRET in json.loads(sent.body)["echo"]  # resolved when the worker sends
    assert SECRET in sent.headers["X-Echo"]
    stored = InvocationLog.objects.get(event=event).request
    assert "sw0rdfish" not in json.dumps(stored)
    assert "[redacted]" in stored["url"]
    assert "[redacted]" in stored["headers"]["X-Echo"]
    assert "[redacted]" in json.loads(stored["body"])["echo"]
