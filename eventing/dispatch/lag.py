"""Queue lag: how long due events wait in the broker before a worker takes them.

The sweeper re-sends a staged row whose message looks lost: sent more than LEASE_GRACE_S ago
and still not taken. Behind a long queue that is every waiting row, and each re-send is one more
message in that queue (a 2,000-event burst made 342 useless copies). Workers note the lag they
see; the sweeper waits that much longer before calling a message lost.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import DatabaseError

from eventing.models import EventLog, Heartbeat
from eventing.runtime import PerProcess

logger = logging.getLogger(__name__)

LAG_HEARTBEAT = "deliver-lag"
# Each worker process writes the lag at most this often (seconds).
WRITE_EVERY_S = 1.0
# An older note is ignored: nobody is taking messages, so the lag says nothing.
FRESH_FOR_S = 10.0


class LastNote:
    """When (time.monotonic()) this process last wrote the lag."""

    def __init__(self) -> None:
        self.at = float("-inf")


_last_note = PerProcess(LastNote)


def note_claim(event: EventLog, now: dt.datetime) -> None:
    """Record how long `event` waited between being due (or sent) and being claimed."""
    last = _last_note()
    if time.monotonic() - last.at < WRITE_EVERY_S:
        return
    last.at = time.monotonic()
    waited_from = max(event.enqueued_at or event.deliver_at, event.deliver_at)
    lag_s = max(0.0, (now - waited_from).total_seconds())
    try:
        Heartbeat.objects.update_or_create(
            name=LAG_HEARTBEAT, defaults={"at": now, "detail": {"lag_s": round(lag_s, 3)}}
        )
    except DatabaseError:  # only a hint for the sweeper: never fail a delivery over it
        logger.debug("Could not record the queue lag", exc_info=True)


def recent_lag_s(now: dt.datetime) -> float:
    """The queue lag workers saw lately, in seconds (0 when none was noted recently)."""
    beat = Heartbeat.objects.filter(
        name=LAG_HEARTBEAT, at__gte=now - dt.timedelta(seconds=FRESH_FOR_S)
    ).first()
    return float(beat.detail.get("lag_s", 0.0)) if beat else 0.0
