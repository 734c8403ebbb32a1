"""The hard deadline of webhook calls: one thread per process fires every call's watchdog."""

from __future__ import annotations

import socket
import time
import types

from eventing.webhooks.client import Watchdog
from tests.waiting import wait_until


def test_a_watchdog_fires_at_its_deadline_and_ends_a_blocked_read():
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(10)
        with Watchdog(0.2) as watchdog:
            watchdog.watch(types.SimpleNamespace(sock=ours))
            data = ours.recv(10)  # the peer never writes: only the shutdown ends this
        assert watchdog.fired
        assert data == b""
    finally:
        ours.close()
        theirs.close()


def test_a_call_that_finished_in_time_is_not_cut_later():
    with Watchdog(0.1) as watchdog:
        pass
    time.sleep(0.3)
    assert not watchdog.fired


def test_a_short_deadline_after_a_long_one_still_fires_on_time():
    long, short = Watchdog(60), Watchdog(0.2)
    long.__enter__()
    short.__enter__()
    try:
        wait_until(lambda: short.fired, timeout_s=5, message="the short deadline fired")
        assert not long.fired
    finally:
        short.__exit__(None, None, None)
        long.__exit__(None, None, None)
