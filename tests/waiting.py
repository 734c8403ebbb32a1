"""Poll a condition with a deadline (no sleeps as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    check: Callable[[], T],
    timeout_s: float = 30.0,
    interval_s: float = 0.05,
    message: str = "condition",
) -> T:
    """Call `check` until it returns something truthy; raise AssertionError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout_s} s waiting for {message}")
        time.sleep(interval_s)
