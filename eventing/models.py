"""EventLog and InvocationLog: every event, and every attempt to deliver it (EventCapture: writes
captured by trigger functions, not yet turned into events)."""

import uuid

from django.db import models
from django.db.models import Q

from triggers.database import EventsDatabaseManager


class EventStatus(models.TextChoices):
    """States of an EventLog row (see docs: intent → staged → processing → …)."""

    INTENT = "intent", "Intent"
    STAGED = "staged", "Staged"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINAL_STATUSES = (EventStatus.PROCESSED, EventStatus.FAILED, EventStatus.CANCELLED)
# Rows an ordered event waits behind: everything not yet final.
UNFINISHED_STATUSES = ("intent", "staged", "processing")
# Deeper payload nesting than this is refused: parsers (and PostgreSQL's jsonb) have depth
# limits, and no sane event needs more.
MAX_PAYLOAD_DEPTH = 100


class EventLog(models.Model):
    """One event for one trigger; the source of truth for its delivery."""

    id = models.UUIDField(
        primary_key=True,
        default=uuid.uuid4,
        editable=False,
        help_text="Event id; also the CloudEvents id and the webhook-id header.",
    )
    batch_id = models.UUIDField(
        db_index=True, help_text="Shared by the events one emit produced (one per trigger)."
    )
    type = models.CharField(max_length=100, help_text="Event type, e.g. DB_UPDATE or a custom.")
    trigger = models.ForeignKey(
        "triggers.Trigger",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_constraint=False,
        # event_logs_trig_st (trigger, status, created_at) serves every lookup by trigger; a
        # second index would cost each insert and status change one more index write.
        db_index=False,
        help_text="The trigger this event is delivered to (null once the trigger is deleted).",
    )
    trigger_name = models.CharField(
        max_length=100, help_text="Name of the trigger, kept if the trigger is deleted."
    )
    source = models.CharField(
        max_length=200,
        blank=True,
        help_text="Model label (DB), storage alias (FILE) or caller-given source (custom).",
    )
    payload = models.JSONField(help_text="The CloudEvents data sent to the webhook.")
    status = models.CharField(
        max_length=20,
        choices=EventStatus.choices,
        default=EventStatus.STAGED,
        help_text="intent → staged → processing → processed | failed; cancelled by a user.",
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Delivery attempts so far.")
    deliver_at = models.DateTimeField(help_text="When the next attempt is due.")
    enqueued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a broker message was last sent for the next attempt; empty: the "
        "sweeper will send one when the event is nearly due.",
    )
    locked_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Lease of the worker delivering it; past it, the sweeper re-stages the row.",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was recorded.")
    processed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it reached processed, failed or cancelled."
    )
    last_status_code = models.PositiveIntegerField(
        null=True, blank=True, help_text="HTTP status of the last attempt."
    )
    remark = models.TextField(blank=True, help_text="Last error, in words.")
    idempotency_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        help_text="Caller-given key; a repeat with the same key and type creates nothing.",
    )
    ordering_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        help_text="The value of the trigger's ordering key in the payload: events of one "
        "trigger with the same value are delivered one at a time, in the order recorded. "
        "Empty: unordered.",
    )

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_logs"
        verbose_name = "event log"
        verbose_name_plural = "event logs"
        ordering = ("-created_at",)
        indexes = [
            # The sweeper: staged rows by due time; processing rows by lease end.
            models.Index(
                fields=["deliver_at"],
                name="event_logs_staged_due",
                condition=Q(status="staged"),
            ),
            models.Index(
                fields=["locked_until"],
                name="event_logs_processing_lease",
                condition=Q(status="processing"),
            ),
            models.Index(
                fields=["created_at"],
                name="event_logs_intent_created",
                condition=Q(status="intent"),
            ),
            # Per trigger by status (admin, redeliver), lists by status/type over time.
            models.Index(fields=["trigger", "status", "created_at"], name="event_logs_trig_st"),
            models.Index(fields=["status", "created_at"], name="event_logs_status_created"),
            models.Index(fields=["type", "created_at"], name="event_logs_type_created"),
            models.Index(fields=["created_at"], name="event_logs_created"),
            # Ordered delivery: the unfinished rows of one (trigger, key), oldest first. Rows
            # of unordered triggers (no key) stay out of it and pay nothing.
            models.Index(
                fields=["trigger", "ordering_key", "created_at", "id"],
                name="event_logs_ordering_queue",
                condition=Q(ordering_key__isnull=False, status__in=UNFINISHED_STATUSES),
            ),
        ]
        constraints = [
            # One emit with a key makes one row per trigger; a repeat finds them instead.
            models.UniqueConstraint(
                fields=["idempotency_key", "type", "trigger_name"],
                name="event_logs_idempotency_unique",
                condition=Q(idempotency_key__isnull=False),
            ),
        ]
        permissions = [
            ("queue_event", "Can queue custom events"),
            ("redeliver_eventlog", "Can redeliver events"),
            ("cancel_eventlog", "Can cancel events"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"


class InvocationLog(models.Model):
    """One attempt to deliver an event: the request sent and what came back."""

    event = models.ForeignKey(
        EventLog,
        on_delete=models.CASCADE,
        related_name="invocations",
        help_text="The event this attempt delivered.",
    )
    attempt = models.PositiveIntegerField(help_text="1-based attempt number.")
    invoked_at = models.DateTimeField(help_text="When the request started.")
    duration_ms = models.PositiveIntegerField(help_text="How long the call took (milliseconds).")
    request = models.JSONField(help_text="URL, headers (secrets redacted) and body of the request.")
    response_status_code = models.PositiveIntegerField(
        null=True, blank=True, help_text="HTTP status, empty when no response came."
    )
    response_headers = models.JSONField(default=dict, blank=True, help_text="Response headers.")
    response_body = models.TextField(
        blank=True, help_text="Response body, cut at EVENTING['MAX_RESPONSE_BYTES']."
    )
    error_msg = models.TextField(blank=True, help_text="Why the attempt failed, if it did.")
    succeeded = models.BooleanField(
        default=False,
        # Also a database default: hand-written INSERTs (benchmarks, other tools) may omit it.
        db_default=False,
        help_text="Whether the webhook took the event, by the outcome rules (a 2xx read in "
        "full in time, not a JSON reply with an `error`): the delivery's own decision.",
    )

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "invocation_logs"
        verbose_name = "invocation log"
        verbose_name_plural = "invocation logs"
        ordering = ("event", "invoked_at")
        indexes = [models.Index(fields=["invoked_at"], name="invocation_logs_invoked")]

    def __str__(self) -> str:
        return f"attempt {self.attempt} of {self.event_id}"


class Heartbeat(models.Model):
    """When a periodic job (the sweeper) last ran; read by health checks and the dashboard."""

    name = models.CharField(max_length=50, primary_key=True, help_text="Which job, e.g. sweep.")
    at = models.DateTimeField(help_text="When it last finished.")
    detail = models.JSONField(default=dict, blank=True, help_text="What it did last time.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "eventing_heartbeats"
        verbose_name = "heartbeat"
        verbose_name_plural = "heartbeats"

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"


class EventCapture(models.Model):
    """One statement's written rows, captured by a trigger function (database capture).

    Append-only and narrow (only the primary key is indexed) so the writing statement pays
    little; the listener, or the sweeper, turns it into event rows and deletes it in one
    transaction.
    """

    id = models.BigAutoField(primary_key=True)
    schema = models.CharField(max_length=63, help_text="Schema of the table and its functions.")
    table = models.CharField(max_length=63, help_text="The table the statement wrote.")
    kind = models.CharField(max_length=6, help_text="insert, update or delete.")
    expander = models.CharField(
        max_length=63,
        help_text="The function that turns this capture into event rows (eventing_capture_x…).",
    )
    trigger_ids = models.JSONField(
        help_text="Triggers enabled when the statement ran: only these get an event."
    )
    created_at = models.DateTimeField(help_text="When the statement ran (the events' created_at).")
    actor = models.TextField(
        null=True,
        blank=True,
        help_text="Who made the change (the writing session's eventing.actor), if known.",
    )
    old_rows = models.TextField(
        null=True, blank=True, help_text="The rows before the statement, as a JSON array."
    )
    new_rows = models.TextField(
        null=True, blank=True, help_text="The rows after the statement, as a JSON array."
    )

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_captures"
        verbose_name = "event capture"
        verbose_name_plural = "event captures"

    def __str__(self) -> str:
        return f"{self.kind} on {self.table} ({self.id})"


class CircuitState(models.TextChoices):
    """A trigger's circuit: closed (delivering) or open (holding events, probing)."""

    CLOSED = "closed", "Closed"
    OPEN = "open", "Open"


class TriggerCircuit(models.Model):
    """A trigger's circuit breaker, shared by every worker: moved on by conditional UPDATEs."""

    trigger = models.OneToOneField(
        "triggers.Trigger",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="circuit",
        db_constraint=False,
        help_text="The trigger whose deliveries this circuit guards.",
    )
    state = models.CharField(
        max_length=10,
        choices=CircuitState.choices,
        default=CircuitState.CLOSED,
        help_text="closed: delivering; open: events wait while one probe is tried now and then.",
    )
    consecutive_failures = models.PositiveIntegerField(
        default=0, help_text="Failed attempts since the last success."
    )
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failed attempt since the last success."
    )
    last_error = models.TextField(blank=True, help_text="Why the last failed attempt failed.")
    opened_at = models.DateTimeField(
        null=True, blank=True, help_text="When the circuit last opened."
    )
    next_probe_at = models.DateTimeField(
        null=True, blank=True, help_text="Open: when the next probe event may be tried."
    )
    probe_interval_s = models.FloatField(
        default=0.0, help_text="Open: wait between probes (doubles after each failed one)."
    )
    updated_at = models.DateTimeField(auto_now=True, help_text="When it last changed.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_trigger_circuits"
        verbose_name = "trigger circuit"
        verbose_name_plural = "trigger circuits"

    def __str__(self) -> str:
        return f"circuit of trigger {self.trigger_id}: {self.state}"


class RateBucket(models.Model):
    """A trigger's token bucket for `rate_limit` when the broker is not Redis; its row is also
    the lock that makes `max_in_flight` hold across workers."""

    trigger_id = models.BigIntegerField(primary_key=True, help_text="The trigger it limits.")
    tokens = models.FloatField(default=0.0, help_text="Requests that may start now.")
    refilled_at = models.DateTimeField(help_text="When tokens were last added.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "eventing_rate_buckets"
        verbose_name = "rate bucket"
        verbose_name_plural = "rate buckets"

    def __str__(self) -> str:
        return f"trigger {self.trigger_id}: {self.tokens:.1f} tokens"


class FollowUpBudget(models.Model):
    """How many follow-up events the chain started by one root event has queued, for
    `FOLLOW_UP_MAX_TOTAL`; kept across retries and redeliveries of any event in the chain."""

    root_id = models.UUIDField(
        primary_key=True, help_text="The event that started the chain (not itself a follow-up)."
    )
    used = models.PositiveIntegerField(default=0, help_text="Follow-up events queued so far.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When the chain began.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "eventing_follow_up_budgets"
        verbose_name = "follow-up budget"
        verbose_name_plural = "follow-up budgets"

    def __str__(self) -> str:
        return f"root {self.root_id}: {self.used} follow-ups"


# Owners' subscriptions, the event catalog and retired secrets live in their own module.
from eventing.subscription_models import (  # noqa: E402, F401
    SUBSCRIPTION_TYPE,
    PublicEventType,
    RetiredSecret,
    Subscription,
)
