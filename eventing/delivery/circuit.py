"""The circuit breaker: after a trigger's `circuit_failures` consecutive failed attempts that
judge the endpoint (connection errors, timeouts, 5xx, 429: `about_endpoint`) its
deliveries stop, one probe event is tried on a growing interval, and a success closes it;
failures spanning DISABLE_AFTER_S pause the trigger.

The state is a row of event_trigger_circuits, shared by every worker and moved on only by
conditional UPDATEs, so one worker wins each transition and each probe. Every transition
records an operational custom event (`eventing_trigger_circuit_opened|_closed|_paused`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from django.db import connections
from django.utils import timezone

from eventing.conf import settings
from eventing.delivery.outcome import Outcome
from eventing.delivery.policy import DeliveryResult, Policy, Run
from eventing.models import CircuitState, TriggerCircuit
from eventing.recording.emit import matching_triggers, record_events
from eventing.runtime import PerProcess
from eventing.store import transitions
from eventing.store.trigger_cache import invalidate
from eventing.webhooks.request import WebhookResponse
from triggers.models import Trigger

logger = logging.getLogger(__name__)

TOO_MANY_REQUESTS = 429
OPENED = "eventing_trigger_circuit_opened"
CLOSED = "eventing_trigger_circuit_closed"
PAUSED = "eventing_trigger_circuit_paused"
# Remarks of events held by an open circuit start so: a close releases exactly these.
HELD = "Held: the trigger's circuit is open"


@dataclass(frozen=True)
class Gate:
    """What the circuit lets a worker do with a trigger's due events now."""

    holds: bool = False  # open and not this worker's turn to probe: attempt nothing
    probe: bool = False  # open, and this worker tries one event
    until: dt.datetime | None = None  # when held events are due again (the next probe)
    tracked: bool = False  # a circuit row with failures exists: a success must reset it

    @property
    def limit(self) -> int | None:
        """How many events may be attempted: one for a probe, else no limit."""
        return 1 if self.probe else None


OPEN_GATE = Gate()


class CircuitPolicy(Policy):
    """The circuit breaker around the loop: an open circuit holds the trigger's due events but
    one probe; the outcomes that judge the endpoint are counted after each pass."""

    name = "circuit"

    def admit(self, run: Run, event_ids: list) -> list:
        gate = admit(run.trigger, run.now, force=run.force)
        run.state[self.name] = gate
        go = [] if gate.holds else event_ids[: gate.limit or len(event_ids)]
        waiting = event_ids[len(go) :]
        if waiting:
            hold(waiting, gate, run.now)
            run.results.update({pk: DeliveryResult(skipped="circuit open") for pk in waiting})
        return go

    def after_finish(self, run: Run, done: list[DeliveryResult], applied: set) -> None:
        gate = run.state.get(self.name, OPEN_GATE)
        judged = [r.outcome for r in done if r.outcome.succeeded or about_endpoint(r.response)]
        record(run.trigger, gate, judged, timezone.now())


def about_endpoint(response: WebhookResponse) -> bool:
    """Whether a failed attempt says the endpoint is failing: a connection error, a timeout, a
    5xx or a 429. A refused payload (another 4xx), a reply with an `error`, a request that could
    not be built or an address the guard refused says nothing about it, so an outsider's
    events cannot open the circuit on everyone else's."""
    if response.blocked or response.unbuildable or response.not_sent:
        return False
    code = response.status_code
    if code is None:
        return bool(response.error)
    return code >= 500 or code == TOO_MANY_REQUESTS


@dataclass
class Rows:
    """Circuit rows as this process last read them, by trigger id (None: no row), reread
    after TRIGGER_CACHE_TTL_S so another worker's transition shows within that time."""

    by_trigger: dict[int, dict | None] = field(default_factory=dict)
    read_at: float = field(default_factory=time.monotonic)

    def fresh(self) -> dict[int, dict | None]:
        """The rows, dropped first when older than the cache TTL."""
        if time.monotonic() - self.read_at >= settings.TRIGGER_CACHE_TTL_S:
            self.by_trigger, self.read_at = {}, time.monotonic()
        return self.by_trigger


_rows = PerProcess(Rows)


def admit(trigger: Trigger, now: dt.datetime, *, force: bool = False) -> Gate:
    """Whether the trigger's due events may be attempted now (one read of its circuit row).

    A forced delivery (a user's test, a synchronous queue call) goes through an open circuit,
    and its success closes it.
    """
    if not trigger.circuit_failures:
        return OPEN_GATE
    if force:
        return Gate(tracked=True)
    row = read(trigger.pk)
    if row is None:
        return OPEN_GATE
    if row["state"] == CircuitState.OPEN:
        # Events are held on an open circuit's word: take it fresh, not from this process's
        # copy (another worker may have closed it; holding then would delay them a probe).
        forget(trigger.pk)
        row = read(trigger.pk)
        if row is None:
            return OPEN_GATE
    if row["state"] == CircuitState.CLOSED:
        return Gate(tracked=row["consecutive_failures"] > 0)
    if row["next_probe_at"] <= now:
        after = now + dt.timedelta(seconds=row["probe_interval_s"])
        won = take_probe(trigger.pk, now, after, row["probe_interval_s"])
        forget(trigger.pk)
        if won:
            return Gate(probe=True, until=after, tracked=True)
        row = read(trigger.pk) or row
        if row["state"] == CircuitState.CLOSED:  # the winner's probe already closed it
            return Gate(tracked=True)
        return Gate(holds=True, until=max(row["next_probe_at"], now), tracked=True)
    return Gate(holds=True, until=row["next_probe_at"], tracked=True)


def read(trigger_id: int) -> dict | None:
    """The trigger's circuit row as this process last read it: a healthy trigger's deliveries
    read it once per TRIGGER_CACHE_TTL_S rather than once per attempt."""
    circuits = _rows().fresh()
    try:
        return circuits[trigger_id]
    except KeyError:
        pass
    row = (
        TriggerCircuit.objects.filter(trigger_id=trigger_id)
        .values("state", "consecutive_failures", "next_probe_at", "probe_interval_s")
        .first()
    )
    circuits[trigger_id] = row
    return row


def forget(trigger_id: int) -> None:
    """This process changed the circuit: read it again next time."""
    _rows().fresh().pop(trigger_id, None)


def take_probe(trigger_id: int, now: dt.datetime, after: dt.datetime, interval_s: float) -> bool:
    """Claim the probe slot (one worker wins); the next probe is due `after`, and the one after
    that waits twice as long (up to CIRCUIT_PROBE_MAX_S)."""
    return bool(
        TriggerCircuit.objects.filter(
            trigger_id=trigger_id, state=CircuitState.OPEN, next_probe_at__lte=now
        ).update(
            next_probe_at=after,
            probe_interval_s=min(interval_s * 2, float(settings.CIRCUIT_PROBE_MAX_S)),
            updated_at=now,
        )
    )


def hold(event_ids: list, gate: Gate, now: dt.datetime) -> None:
    """Leave due staged events waiting, without an attempt, until the next probe; the sweeper
    sends them again then (or at once when the circuit closes)."""
    until = gate.until or now
    remark = f"{HELD}; next probe at {until:%Y-%m-%d %H:%M:%S} UTC"
    transitions.hold_until(event_ids, until, remark, now)


def record(trigger: Trigger, gate: Gate, outcomes: list[Outcome], now: dt.datetime) -> None:
    """Count the attempts just made on the trigger's circuit and make any transition they
    cause (open, close, pause), each announced by an operational event."""
    if not trigger.circuit_failures or not outcomes:
        return
    if any(outcome.succeeded for outcome in outcomes):
        if gate.tracked:
            succeeded(trigger, now)
        return
    failed(trigger, len(outcomes), outcomes[-1].remark, now)


def closed_circuit(now: dt.datetime) -> dict:
    """The columns of a closed circuit with no failures counted."""
    return {
        "state": CircuitState.CLOSED,
        "consecutive_failures": 0,
        "failing_since": None,
        "next_probe_at": None,
        "probe_interval_s": 0.0,
        "updated_at": now,
    }


def succeeded(trigger: Trigger, now: dt.datetime) -> None:
    """A success: the failure count starts again; an open circuit closes."""
    circuits = TriggerCircuit.objects.filter(trigger_id=trigger.pk)
    before = circuits.values("consecutive_failures", "failing_since", "opened_at").first()
    closed = circuits.filter(state=CircuitState.OPEN).update(**closed_circuit(now))
    circuits.filter(consecutive_failures__gt=0).update(
        consecutive_failures=0, failing_since=None, updated_at=now
    )
    forget(trigger.pk)
    if closed:
        released = release_held(trigger.pk, now)
        announce(
            CLOSED,
            trigger,
            reason="A probe event was delivered.",
            failures=before["consecutive_failures"] if before else 0,
            failing_since=before["failing_since"] if before else None,
            opened_at=before["opened_at"] if before else None,
            now=now,
            released=released,
        )


def failed(trigger: Trigger, count: int, error: str, now: dt.datetime) -> None:
    """`count` failed attempts: counted; enough of them open the circuit, and failures spanning
    DISABLE_AFTER_S pause the trigger."""
    row = count_failures(trigger.pk, count, error, now)
    # What the statement returned is the row as it now is: the next delivery need not read it.
    _rows().fresh()[trigger.pk] = row
    failures, since = row["consecutive_failures"], row["failing_since"]
    if row["state"] == CircuitState.CLOSED and failures >= trigger.circuit_failures:
        open_circuit(trigger, failures, since, error, now)
    limit = settings.DISABLE_AFTER_S
    if limit is not None and since is not None and now - since >= dt.timedelta(seconds=limit):
        pause(trigger, failures, since, error, now)


def count_failures(trigger_id: int, count: int, error: str, now: dt.datetime) -> dict:
    """Add `count` failures to the trigger's circuit (created closed if new) in one statement;
    its state, failures in a row and first failure's time after the change."""
    db = settings.DATABASE
    connection = connections[db]
    qn = connection.ops.quote_name
    table = qn(TriggerCircuit._meta.db_table)
    values = {
        "trigger": trigger_id,
        "state": CircuitState.CLOSED,
        "consecutive_failures": count,
        "failing_since": now,
        "last_error": error[:1000],
        "probe_interval_s": 0.0,
        "updated_at": now,
    }
    fields = [TriggerCircuit._meta.get_field(name) for name in values]
    params = [
        f.get_db_prep_save(v, connection) for f, v in zip(fields, values.values(), strict=True)
    ]
    failures, since, last, updated = (
        qn(c) for c in ("consecutive_failures", "failing_since", "last_error", "updated_at")
    )
    sql = (
        f"INSERT INTO {table} ({', '.join(qn(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({qn('trigger_id')}) DO UPDATE SET "
        f"{failures} = {table}.{failures} + EXCLUDED.{failures}, "
        f"{since} = COALESCE({table}.{since}, EXCLUDED.{since}), "
        f"{last} = EXCLUDED.{last}, {updated} = EXCLUDED.{updated} "
        f"RETURNING {qn('state')}, {failures}, {since}, {qn('next_probe_at')}, "
        f"{qn('probe_interval_s')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        state, total, first, probe_at, interval = cursor.fetchone()
    return {
        "state": state,
        "consecutive_failures": total,
        "failing_since": as_datetime(first, connection),
        "next_probe_at": as_datetime(probe_at, connection),
        "probe_interval_s": interval,
    }


def as_datetime(value, connection) -> dt.datetime | None:
    """A datetime column's value as fetched by a raw cursor, converted as the ORM would."""
    field = TriggerCircuit._meta.get_field("failing_since")
    column = field.get_col(TriggerCircuit._meta.db_table)
    for convert in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
        value = convert(value, column, connection)
    return value


def open_circuit(
    trigger: Trigger, failures: int, since: dt.datetime, error: str, now: dt.datetime
) -> None:
    """closed → open, if no other worker did it first; the first probe waits
    CIRCUIT_PROBE_FIRST_S."""
    first = float(settings.CIRCUIT_PROBE_FIRST_S)
    probe_at = now + dt.timedelta(seconds=first)
    opened = TriggerCircuit.objects.filter(trigger_id=trigger.pk, state=CircuitState.CLOSED).update(
        state=CircuitState.OPEN,
        opened_at=now,
        next_probe_at=probe_at,
        probe_interval_s=min(first * 2, float(settings.CIRCUIT_PROBE_MAX_S)),
        updated_at=now,
    )
    forget(trigger.pk)
    if opened:
        logger.warning("Trigger %s: circuit opened after %s failures", trigger.name, failures)
        announce(
            OPENED,
            trigger,
            reason=f"{failures} consecutive failed attempts; the last: {error}",
            failures=failures,
            failing_since=since,
            opened_at=now,
            now=now,
            next_probe_at=probe_at,
        )


def pause(
    trigger: Trigger, failures: int, since: dt.datetime, error: str, now: dt.datetime
) -> None:
    """Pause the trigger (the pause a user or a 410 sets), once; its circuit starts afresh so
    resuming delivers its events again."""
    days = (now - since).total_seconds() / 86400
    reason = (
        f"Paused: every attempt failed for {days:.1f} days ({failures} in a row) until "
        f"{now:%Y-%m-%d %H:%M:%S} UTC; the last: {error}"
    )[:500]
    paused = Trigger.objects.filter(pk=trigger.pk, paused=False).update(
        paused=True, paused_reason=reason, updated_at=now
    )
    if not paused:
        return
    TriggerCircuit.objects.filter(trigger_id=trigger.pk).update(**closed_circuit(now))
    invalidate()  # the pause
    forget(trigger.pk)
    release_held(trigger.pk, now)  # due at once: the pause holds them, a resume sends them
    logger.warning("Trigger %s: %s", trigger.name, reason)
    announce(
        PAUSED,
        trigger,
        reason=reason,
        failures=failures,
        failing_since=since,
        opened_at=None,
        now=now,
    )


def release_held(trigger_id: int, now: dt.datetime) -> int:
    """Events an open circuit held become due now; the sweeper sends them. How many."""
    return transitions.release_held(trigger_id, HELD, now)


def announce(
    event_type: str,
    trigger: Trigger,
    *,
    reason: str,
    failures: int,
    failing_since: dt.datetime | None,
    opened_at: dt.datetime | None,
    now: dt.datetime,
    **extra,
) -> None:
    """Record the operational event of a transition for every trigger subscribed to it but the
    one it is about: a subscriber that fails itself cannot feed its own circuit's events back
    to itself."""
    payload = {
        "trigger": trigger.name,
        "reason": reason,
        "consecutive_failures": failures,
        "failing_since": iso(failing_since),
        "opened_at": iso(opened_at),
        "at": iso(now),
        **{
            key: iso(value) if isinstance(value, dt.datetime) else value
            for key, value in extra.items()
        },
    }
    targets = [t for t in matching_triggers(event_type, payload) if t.id != trigger.pk]
    try:
        record_events(event_type, [(t, payload) for t in targets], source=trigger.name, due=now)
    except Exception:  # noqa: BLE001 - the transition stands; only its announcement is lost
        logger.exception("Trigger %s: the %s event was not recorded", trigger.name, event_type)


def iso(moment: dt.datetime | None) -> str | None:
    """A time as ISO 8601, or None."""
    return moment.isoformat() if moment else None
