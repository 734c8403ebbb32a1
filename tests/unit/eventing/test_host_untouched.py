"""Nothing of the host process is patched: urllib3's loggers carry Eventing's filter only while
this process sends webhooks, and `runtime.stop()` takes it off again; stop() also waits for the
threads Eventing started."""

from __future__ import annotations

import logging
import threading

from eventing import runtime
from eventing.ops import health
from eventing.webhooks.client import URLLIB3_LOGGERS, ScrubSecrets, scrubbed_logs
from eventing.webhooks.scrubbing import REDACTED


def scrubbers() -> list[ScrubSecrets]:
    """Eventing's filters on urllib3's loggers."""
    return [
        found
        for name in URLLIB3_LOGGERS
        for found in logging.getLogger(name).filters
        if isinstance(found, ScrubSecrets)
    ]


def test_urllib3_loggers_carry_the_scrubber_only_from_a_call_until_stop(caplog):
    caplog.set_level(logging.DEBUG, logger="urllib3")
    runtime.stop()
    assert scrubbers() == []  # importing eventing.webhooks.client added nothing

    with scrubbed_logs(("s3cret-token",)):
        logging.getLogger("urllib3.connectionpool").debug("GET /hook?token=%s", "s3cret-token")
    assert "s3cret-token" not in caplog.text
    assert f"GET /hook?token={REDACTED}" in caplog.text
    assert len(scrubbers()) == len(URLLIB3_LOGGERS)

    with scrubbed_logs(("other",)):  # a second call adds no second filter
        pass
    assert len(scrubbers()) == len(URLLIB3_LOGGERS)

    assert runtime.stop()
    assert scrubbers() == []


def test_a_call_without_secrets_adds_no_filter():
    runtime.stop()
    with scrubbed_logs(()):
        pass
    assert scrubbers() == []


def test_runtime_stop_waits_for_a_background_broker_probe(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(health, "probe_broker", lambda now=None, cache=None: release.wait(10))
    runtime.stop()
    probe = health.refresh_broker_in_background()
    try:
        # Still probing: stop() reports that it could not finish within its bound.
        assert runtime.stop(timeout_s=0.2) is False
        assert probe.is_alive()
    finally:
        release.set()
    probe.join(10)
    assert not probe.is_alive()
