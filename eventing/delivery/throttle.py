"""Endpoint protection: a trigger's `max_in_flight` and `rate_limit`, across every worker.

Rows are claimed as usual; those over a limit are handed straight back (staged again, the
attempt they were given taken back) with a due time a little later and a message for it, so
waiting never uses up attempts. `max_in_flight` counts the trigger's processing rows under a
lock on its `eventing_rate_buckets` row, so concurrent claims in other processes wait their
turn. `rate_limit` is a token bucket holding one second's worth of events: in Redis when the
broker is Redis (one atomic script), else in that same database row. The bucket may run up to
RESERVE_S of debt: a claimed row that gets a token in debt is sent at its turn (its sender
waits), so the rate holds however late messages come back, and no token goes unused while rows
wait.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from celery import current_app
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from eventing.conf import settings
from eventing.models import EventLog, EventStatus, RateBucket
from eventing.runtime import PerProcess
from triggers.models import Trigger

# Redis keys of the buckets; a bucket idle this long is dropped (it refills to full anyway).
REDIS_KEY = "eventing:rate:{trigger_id}"
REDIS_IDLE_S = 3600
# How far ahead a row may take a token (seconds of debt); its sender waits for its turn.
RESERVE_S = 0.5
# Take up to ARGV[3] tokens from a bucket refilled at ARGV[1]/s up to ARGV[2], going at most
# ARGV[4] tokens into debt, by Redis' clock; returns how many were taken and the tokens before.
TAKE_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local wanted, debt = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or t
tokens = math.min(capacity, tokens + math.max(0, t - at) * rate)
local taken = math.max(0, math.min(wanted, math.floor(tokens + debt)))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - taken), 'at', tostring(t))
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {taken, tostring(tokens)}
"""


@dataclass
class Held:
    """A claimed row handed back over a limit, and when it is tried again."""

    event_id: object
    due: dt.datetime
    reason: str


def claim_within_limits(
    claim: Callable[[list], list[EventLog]], event_ids: list, trigger: Trigger, now: dt.datetime
) -> tuple[list[EventLog], list[Held]]:
    """`claim(ids)` keeping the trigger's limits: the rows to send now, and those held back."""
    if not trigger.throttled:
        return claim(event_ids), []
    if trigger.max_in_flight:
        with transaction.atomic(using=settings.DATABASE):
            lock_bucket(trigger.pk, now)
            free = max(0, trigger.max_in_flight - in_flight(trigger.pk, now))
            claimed = claim(event_ids)
            claimed, over = claimed[:free], claimed[free:]
            held = hand_back(over, in_flight_due(now), "max_in_flight reached")
    else:
        claimed, held = claim(event_ids), []
    if trigger.rate_limit and claimed:
        granted, had = take_tokens(trigger, len(claimed), now)
        claimed, over = claimed[:granted], claimed[granted:]
        for n, row in enumerate(claimed):
            # Token n of those taken is there when the bucket has refilled to it.
            row.send_at = now + dt.timedelta(seconds=max(0.0, (n + 1 - had) / trigger.rate_limit))
        dues = rate_dues(trigger.rate_limit, len(over), now)
        held += hand_back(over, dues, "rate_limit reached")
    return claimed, held


def extra_lease(trigger: Trigger) -> dt.timedelta:
    """What a row of this trigger may wait for its token, added to its lease."""
    return dt.timedelta(seconds=RESERVE_S if trigger.rate_limit else 0.0)


def wait_turn(event: EventLog) -> None:
    """Wait until the row's token is there (rows that took one in debt); at once otherwise."""
    send_at = getattr(event, "send_at", None)
    if send_at is not None:
        wait = (send_at - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(wait)


def in_flight(trigger_id: int, now: dt.datetime) -> int:
    """The trigger's requests under way: processing rows whose lease still runs."""
    return (
        EventLog.objects.using(settings.DATABASE)
        .filter(trigger_id=trigger_id, status=EventStatus.PROCESSING, locked_until__gte=now)
        .count()
    )


def lock_bucket(trigger_id: int, now: dt.datetime, full: float = 0.0) -> RateBucket:
    """The trigger's bucket row, locked until the transaction ends (made on first use, with
    `full` tokens)."""
    bucket, _ = (
        RateBucket.objects.using(settings.DATABASE)
        .select_for_update()
        .get_or_create(trigger_id=trigger_id, defaults={"tokens": full, "refilled_at": now})
    )
    return bucket


def in_flight_due(now: dt.datetime) -> list[dt.datetime]:
    """When rows held back by max_in_flight look again: soon, spread so they do not collide."""
    wait = settings.THROTTLE_RECHECK_S * random.uniform(0.5, 1.5)  # noqa: S311 - jitter only
    return [now + dt.timedelta(seconds=wait)]


def rate_dues(rate: float, count: int, now: dt.datetime) -> list[dt.datetime]:
    """When `count` rows over the rate look again: past the debt this worker may run, one every
    1/rate s, as the bucket refills."""
    return [now + dt.timedelta(seconds=RESERVE_S + (n + 1) / rate) for n in range(count)]


def hand_back(rows: list[EventLog], dues: list[dt.datetime], reason: str) -> list[Held]:
    """Stage claimed rows again, their attempt taken back, due at `dues` (the last one for any
    row beyond the list); each gets a message for that time from the task."""
    held = []
    by_due: dict[dt.datetime, list] = {}
    for n, row in enumerate(rows):
        due = dues[min(n, len(dues) - 1)]
        # Rows a few milliseconds apart share one UPDATE.
        due = due.replace(microsecond=due.microsecond // 20_000 * 20_000)
        by_due.setdefault(due, []).append(row.id)
        held.append(Held(row.id, due, reason))
    for due, ids in by_due.items():
        EventLog.objects.using(settings.DATABASE).filter(
            id__in=ids, status=EventStatus.PROCESSING
        ).update(
            status=EventStatus.STAGED,
            attempts=F("attempts") - 1,
            locked_until=None,
            deliver_at=due,
            enqueued_at=timezone.now(),
            remark=f"Waiting: {reason}",
        )
    return held


def take_tokens(trigger: Trigger, wanted: int, now: dt.datetime) -> tuple[int, float]:
    """Take up to `wanted` tokens from the trigger's bucket, going at most RESERVE_S into debt;
    how many were taken, and the tokens there were before."""
    rate = trigger.rate_limit
    capacity, debt = max(1.0, rate), rate * RESERVE_S
    script = redis_script()
    if script is not None:
        key = REDIS_KEY.format(trigger_id=trigger.pk)
        taken, had = script(keys=[key], args=[rate, capacity, wanted, debt, REDIS_IDLE_S])
        return int(taken), float(had)
    with transaction.atomic(using=settings.DATABASE):
        bucket = lock_bucket(trigger.pk, now, full=capacity)
        elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
        tokens = min(capacity, bucket.tokens + elapsed * rate)
        taken = max(0, min(wanted, math.floor(tokens + debt)))
        RateBucket.objects.using(settings.DATABASE).filter(trigger_id=trigger.pk).update(
            tokens=tokens - taken, refilled_at=max(now, bucket.refilled_at)
        )
    return taken, tokens


class RedisBuckets:
    """This process's bucket script on the Redis broker (None when the broker is not Redis)."""

    def __init__(self) -> None:
        url = current_app.conf.broker_url or ""
        self.script = None
        if url.startswith(("redis://", "rediss://")):
            self.script = redis.Redis.from_url(url).register_script(TAKE_SCRIPT)


_redis = PerProcess(RedisBuckets)


def redis_script():
    """The token-taking script on Redis, or None (the database holds the buckets)."""
    return _redis().script
