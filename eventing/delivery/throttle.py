"""Endpoint protection: a trigger's `max_in_flight` and `rate_limit`, across every worker.

Rows are claimed as usual; those over a limit are handed straight back (staged again, the
attempt they were given taken back) with a due time a little later and a message for it, so
waiting never uses up attempts. `max_in_flight` counts the trigger's processing rows under a
lock on its `eventing_rate_buckets` row, so concurrent claims in other processes wait their
turn. `rate_limit` is a smooth token bucket: in Redis when the broker is Redis (one atomic
script), else in that same database row. It holds a tenth of a second's worth (BURST_SHARE, at
least one token), and each process spaces its sends 1/rate apart (Pacer), so no rolling second
sees more than the limit + 10 %. The bucket may run up to RESERVE_S of debt:
a claimed row that gets a token in debt is sent at its turn (its sender waits), so the rate
holds however late messages come back, and no token goes unused while rows wait.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
import time
from dataclasses import dataclass

import redis
from celery import current_app
from django.db import DatabaseError, transaction
from django.utils import timezone

from eventing.conf import settings
from eventing.delivery.policy import Claim, DeliveryResult, Policy, Run
from eventing.dispatch.publish import publish_due
from eventing.models import EventLog, EventStatus, RateBucket
from eventing.runtime import PerProcess
from eventing.store import transitions
from triggers.models import Trigger

# Rows held back by max_in_flight: their remark, and how late they look again by themselves
# (a finished request releases the oldest at once).
IN_FLIGHT_REASON = "max_in_flight reached"
IN_FLIGHT_REMARK = f"Waiting: {IN_FLIGHT_REASON}"
HELD_RECHECK_S = 10.0
# Redis keys of the buckets; a bucket idle this long is dropped (it refills to full anyway).
REDIS_KEY = "eventing:rate:{trigger_id}"
REDIS_IDLE_S = 3600
# Tokens an idle bucket holds, as a share of the rate (at least one): what a rolling second may
# see beyond the limit. A second's worth (as before) let a receiver see 1.5 × the limit in one
# second; a tenth keeps it within limit + 10 % and still absorbs short gaps between claims.
BURST_SHARE = 0.1
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


class ThrottlePolicy(Policy):
    """`max_in_flight` and `rate_limit` around the claim; a row that took its token ahead
    waits for its turn before it is sent (the turn kept in this pass's state, by event id)."""

    name = "throttle"

    def lease(self, run: Run) -> dt.timedelta:
        return extra_lease(run.trigger)

    def claim(self, run: Run, event_ids: list, claim: Claim) -> list[EventLog]:
        claimed, held, turns = claim_within_limits(claim, event_ids, run.trigger, run.now)
        run.state[self.name] = turns
        for h in held:
            run.results[h.event_id] = DeliveryResult(
                skipped=f"held back: {h.reason}", next_message_at=h.due
            )
        return claimed

    def after_finish(self, run: Run, done: list[DeliveryResult], applied: set) -> None:
        if run.trigger is not None and run.trigger.max_in_flight:
            sent = sum(1 for r in done if r.event is not None and r.event.id in applied)
            release_held_rows(run.trigger.pk, sent)

    def before_send(self, run: Run, event: EventLog) -> None:
        turn = run.state.get(self.name, {}).get(event.id)
        if run.trigger.rate_limit:
            _pacer().wait_for_slot(run.trigger.pk, run.trigger.rate_limit, turn)
        else:
            wait_turn(turn)


class Pacer:
    """This process's last send per rate-limited trigger: a row goes at its turn and at least
    1/rate after the one before, counted when each actually goes, so rows whose claim or
    thread ran late never reach the receiver as a burst."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[int, dt.datetime] = {}

    def wait_for_slot(self, trigger_id: int, rate: float, turn: dt.datetime | None) -> None:
        """Wait until a row of this trigger may go: its turn, and 1/rate after the last."""
        gap = dt.timedelta(seconds=1 / rate)
        while True:
            now = timezone.now()
            with self.lock:
                last = self.last.get(trigger_id)
                at = max(turn or now, last + gap if last is not None else now)
                if at <= now:
                    self.last[trigger_id] = now
                    return
            time.sleep((at - now).total_seconds())


_pacer = PerProcess(Pacer)


def claim_within_limits(
    claim: Claim, event_ids: list, trigger: Trigger, now: dt.datetime
) -> tuple[list[EventLog], list[Held], dict]:
    """`claim(ids)` keeping the trigger's limits: the rows to send now, those held back, and
    when each row that took a token ahead may be sent (by event id)."""
    turns: dict = {}
    if not trigger.throttled:
        return claim(event_ids), [], turns
    if trigger.max_in_flight:
        with transaction.atomic(using=settings.DATABASE):
            lock_bucket(trigger.pk, now)
            free = max(0, trigger.max_in_flight - in_flight(trigger.pk, now))
            claimed = claim(event_ids)
            claimed, over = claimed[:free], claimed[free:]
            held = hand_back(over, in_flight_due(now), IN_FLIGHT_REASON)
    else:
        claimed, held = claim(event_ids), []
    if trigger.rate_limit and claimed:
        granted, had = take_tokens(trigger, len(claimed), now)
        # Turns count from when the tokens were taken, not from `now` before the claim: a
        # claim that took a while must not send its rows early, closer to the last pass's.
        taken_at = timezone.now()
        claimed, over = claimed[:granted], claimed[granted:]
        for n, row in enumerate(claimed):
            # Token n of those taken is there when the bucket has refilled to it.
            wait = max(0.0, (n + 1 - had) / trigger.rate_limit)
            if wait:
                turns[row.id] = taken_at + dt.timedelta(seconds=wait)
        dues = rate_dues(trigger.rate_limit, len(over), now)
        held += hand_back(over, dues, "rate_limit reached")
    return claimed, held, turns


def extra_lease(trigger: Trigger) -> dt.timedelta:
    """What a row of this trigger may wait for its token, added to its lease."""
    return dt.timedelta(seconds=RESERVE_S if trigger.rate_limit else 0.0)


def wait_turn(send_at: dt.datetime | None) -> None:
    """Wait until a row's token is there (rows that took one in debt); at once otherwise."""
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
    """When rows held back by max_in_flight look again by themselves: late, spread. A finished
    request of the trigger releases the oldest held row at once (release_held_rows), so a
    backlog costs messages at the endpoint's pace, not a re-check of every row each
    THROTTLE_RECHECK_S (which filled the shared queue ahead of other triggers' rows); this
    later look is only the safety net for a release that never came."""
    wait = HELD_RECHECK_S * random.uniform(0.5, 1.5)  # noqa: S311 - jitter only
    return [now + dt.timedelta(seconds=wait)]


def release_held_rows(trigger_id: int, count: int) -> int:
    """Send the oldest `count` rows max_in_flight held back, now: slots just came free."""
    now = timezone.now()
    try:
        due = transitions.release_oldest(trigger_id, IN_FLIGHT_REMARK, count, now)
        failed = publish_due(due, now) if due else []
    except DatabaseError:
        return 0  # the held rows' own messages come later anyway
    transitions.unmark(failed)
    return len(due) - len(failed)


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
        transitions.hand_back(ids, due, f"Waiting: {reason}", timezone.now())
    return held


def take_tokens(trigger: Trigger, wanted: int, now: dt.datetime) -> tuple[int, float]:
    """Take up to `wanted` tokens from the trigger's bucket, going at most RESERVE_S into debt;
    how many were taken, and the tokens there were before."""
    rate = trigger.rate_limit
    capacity, debt = max(1.0, rate * BURST_SHARE), rate * RESERVE_S
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
