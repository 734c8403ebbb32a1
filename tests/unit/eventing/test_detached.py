"""The detached writer: order, retries, errors, and the bounded wait (no database needed)."""

from __future__ import annotations

import logging
import threading

import pytest
from django.db import OperationalError

from eventing.capture import detached


@pytest.fixture
def mode(monkeypatch):
    """Force the mode run_detached picks (normally read from the caller's connection)."""

    def force(value: detached.Mode) -> None:
        monkeypatch.setattr(detached, "mode_for", lambda db: value)

    return force


def test_jobs_run_in_order_on_another_thread(mode):
    mode(detached.Mode.DEFER)
    seen = []
    for index in range(5):
        detached.run_detached(
            lambda i=index: seen.append((i, threading.current_thread().name)),
            "default",
            wait=True,  # DEFER never waits, even when asked
        )
    assert detached.flush(10)
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"eventing-detached"}


def test_busy_database_is_retried(mode, monkeypatch):
    mode(detached.Mode.WAIT)
    monkeypatch.setattr(detached, "RETRY_PAUSE_S", 0.01)
    calls = []

    def busy_twice():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("database is locked")

    detached.run_detached(busy_twice, "default", wait=True)
    assert len(calls) == 3


def test_waiting_caller_gets_the_error(mode):
    mode(detached.Mode.WAIT)

    def broken():
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        detached.run_detached(broken, "default", wait=True)


def test_errors_nobody_waits_for_are_logged(mode, caplog):
    mode(detached.Mode.WAIT)

    def broken():
        raise ValueError("bad row")

    with caplog.at_level(logging.ERROR, logger="eventing.capture.detached"):
        detached.run_detached(broken, "default", wait=False)
        assert detached.flush(10)
    assert "Detached write failed" in caplog.text
    assert "bad row" in caplog.text


def test_wait_is_bounded(mode, monkeypatch):
    mode(detached.Mode.WAIT)
    monkeypatch.setattr(detached, "WAIT_TIMEOUT_S", 0.2)
    release = threading.Event()
    try:
        with pytest.raises(OperationalError, match="did not take the write"):
            detached.run_detached(lambda: release.wait(10), "default", wait=True)
    finally:
        release.set()
    assert detached.flush(10)


def test_inline_runs_on_the_callers_thread(mode, caplog):
    mode(detached.Mode.INLINE)
    seen = []
    detached.run_detached(lambda: seen.append(threading.current_thread()), "default", wait=True)
    assert seen == [threading.current_thread()]

    def broken():
        raise ValueError("after the operation")

    with caplog.at_level(logging.ERROR, logger="eventing.capture.detached"):
        detached.run_detached(broken, "default", wait=False)  # logged, not raised
    assert "after the operation" in caplog.text
