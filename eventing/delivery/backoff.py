"""When to try again: exponential backoff with jitter, and Retry-After."""

from __future__ import annotations

import datetime as dt
import random
import re
from email.utils import parsedate_to_datetime

JITTER = 0.2
# RFC 9110 delta-seconds: ASCII digits only (str.isdigit() also takes "²", which float() refuses).
DELTA_SECONDS_RE = re.compile(r"[0-9]+")


def backoff_delay(attempt: int, base_s: float, max_s: float, rng=random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): base·2^(n-1), ±20 %."""
    delay = min(base_s * (2 ** max(attempt - 1, 0)), max_s)
    return max(0.0, min(delay * rng.uniform(1 - JITTER, 1 + JITTER), max_s))


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds asked by a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if DELTA_SECONDS_RE.fullmatch(value):
        return float(value)  # never raises on ASCII digits (a huge value is inf, capped later)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def next_delay(
    attempt: int, base_s: float, max_s: float, retry_after_s: float | None, rng=random
) -> float:
    """The wait before the next attempt: backoff, no earlier than Retry-After, capped at max."""
    delay = backoff_delay(attempt, base_s, max_s, rng)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return min(delay, max_s)
