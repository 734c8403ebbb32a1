"""Trigger and EventType: what to call, for which events, and who may queue custom events."""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from . import defaults
from .database import EventsDatabaseManager
from .types import NAME_RE

# Methods a request transform may use.
REQUEST_METHODS = ("POST", "PUT", "PATCH", "DELETE", "GET")

# Longest delay or backoff a trigger may ask for: beyond a year is a typo, and far beyond it
# overflows date arithmetic.
MAX_DELAY_S = 366 * 24 * 3600

name_validator = RegexValidator(
    NAME_RE, "Use only letters, digits and underscores.", code="invalid_name"
)


class RetryPolicy(models.TextChoices):
    """Which failed attempts are retried; the others fail the event at once."""

    TRANSIENT = "transient", "Transient failures: 408, 425, 429, 5xx, timeouts, connection errors"
    ALL = "all", "Every failure"
    LISTED = "listed", "Listed statuses, timeouts and connection errors"


# Failures a retry may cure under the default policy; any other 4xx will be refused again.
TRANSIENT_4XX = (408, 425, 429)


class Trigger(models.Model):
    """A webhook called for every event of one type (and source) that passes its filter."""

    REQUEST_METHODS = REQUEST_METHODS

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[name_validator],
        help_text="Unique name: letters, digits and underscores. Failed events are re-emitted "
        "as the custom type dlq_<name>.",
    )
    type = models.CharField(
        max_length=100,
        db_index=True,
        help_text="DB_INSERT, DB_UPDATE, DB_DELETE, FILE_CREATE, FILE_DELETE, or the name of a "
        "custom event type.",
    )
    source = models.CharField(
        max_length=200,
        blank=True,
        help_text="For DB types the model (app_label.ModelName); for FILE types the storage "
        "alias; blank for custom types.",
    )
    url = models.CharField(
        "URL",
        max_length=2000,
        help_text="Webhook URL (http or https). May hold {{ENV_VAR}} placeholders, resolved "
        "from the worker's environment at delivery time.",
    )
    enabled = models.BooleanField(
        default=True, help_text="When off, no events are recorded for this trigger."
    )
    paused = models.BooleanField(
        default=False,
        help_text="When on, events are still recorded but held as staged; resuming delivers them.",
    )
    paused_reason = models.CharField(
        max_length=500, blank=True, help_text="Why the trigger is paused (e.g. a 410 reply)."
    )
    retries = models.PositiveIntegerField(
        default=defaults.default_retries,
        validators=[MaxValueValidator(100)],
        help_text="Retries after a failed attempt; attempts = retries + 1.",
    )
    timeout_ms = models.PositiveIntegerField(
        "timeout (ms)",
        default=defaults.default_timeout_ms,
        validators=[MinValueValidator(1), MaxValueValidator(300_000)],
        help_text="Time allowed for the whole call, connect and read (milliseconds).",
    )
    backoff_base_s = models.FloatField(
        "backoff base (s)",
        default=defaults.default_backoff_base_s,
        validators=[MinValueValidator(0.0), MaxValueValidator(MAX_DELAY_S)],
        help_text="Delay before the first retry; doubles per attempt, ±20 % jitter (seconds).",
    )
    backoff_max_s = models.FloatField(
        "backoff max (s)",
        default=defaults.default_backoff_max_s,
        validators=[MinValueValidator(0.0), MaxValueValidator(MAX_DELAY_S)],
        help_text="Longest delay between attempts, also the cap on Retry-After (seconds).",
    )
    retry_policy = models.CharField(
        max_length=20,
        choices=RetryPolicy.choices,
        default=RetryPolicy.TRANSIENT,
        help_text="Which failed attempts are retried. Under the default, a 4xx other than 408, "
        "425 and 429 fails the event at once (a 410 also pauses the trigger).",
    )
    retry_statuses = models.JSONField(
        default=list,
        blank=True,
        help_text='With "Listed statuses": the HTTP statuses retried, e.g. [409, 500, 503]. '
        "Timeouts and connection errors are always retried.",
    )
    circuit_failures = models.PositiveIntegerField(
        "circuit opens after",
        default=10,
        validators=[MaxValueValidator(100_000)],
        help_text="Consecutive failed attempts after which delivery stops and one probe event "
        "is tried on a growing interval until one succeeds; 0 turns the circuit breaker off.",
    )
    delay_s = models.FloatField(
        "delay (s)",
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(MAX_DELAY_S)],
        help_text="Every event of this trigger is delivered this many seconds after it happens.",
    )
    watch_fields = models.JSONField(
        default=list,
        blank=True,
        help_text="DB_UPDATE only: fire only if one of these fields changed. Empty: any update.",
    )
    payload_fields = models.JSONField(
        default=list,
        blank=True,
        help_text="DB types: fields sent in old/new. Empty: all fields.",
    )
    filter = models.JSONField(
        default=dict,
        blank=True,
        help_text='Match on the event data, e.g. {"new.status": "paid"} or '
        '{"new.status": ["paid", "shipped"]}. Empty: every event.',
    )
    path_pattern = models.CharField(
        max_length=500,
        blank=True,
        help_text="FILE types: glob the file name must match, e.g. avatars/*.png. Empty: any.",
    )
    headers = models.JSONField(
        default=list,
        blank=True,
        help_text='Extra request headers: [{"name": "X-Key", "value": "…"} or '
        '{"name": "Authorization", "value_from_env": "HOOK_TOKEN"}].',
    )
    send_authorization = models.BooleanField(
        default=False,
        verbose_name="send Authorization",
        help_text="Also send 'Authorization: Bearer <token>' with the X-SC-Token's signed claims, "
        "as Space Cloud sends its trigger token (for receivers that read that header).",
    )
    # Request transform (Space Cloud's request templates, Hasura's Kriti): empty fields keep
    # today's request. Templates are Jinja2, sandboxed and bounded (triggers.templating).
    transform_method = models.CharField(
        "method",
        max_length=10,
        choices=[(m, m) for m in REQUEST_METHODS],
        default="POST",
        help_text="HTTP method of the webhook call.",
    )
    transform_url = models.TextField(
        "URL template",
        blank=True,
        help_text="Template of the URL, e.g. {{ base_url }}/orders/{{ data.new.id }}. Empty: the "
        "URL above. Variables: data, type, id, time, trigger, base_url, event.",
    )
    transform_query = models.JSONField(
        "query parameters",
        default=dict,
        blank=True,
        help_text='Query parameters added to the URL, name to template: {"order": '
        '"{{ data.new.id }}"}.',
    )
    transform_headers = models.JSONField(
        "header templates",
        default=dict,
        blank=True,
        help_text='Headers, name to template: {"X-Order": "{{ data.new.id }}"}; may set '
        "Content-Type. An empty result leaves the header out. Keep credentials in Headers "
        "(value_from_env).",
    )
    transform_body = models.TextField(
        "body template",
        blank=True,
        help_text='Template of the body, e.g. {"id": {{ data.new.id }}, "name": '
        "{{ data.new.name | tojson }}}. Must give valid JSON when the content type is JSON. "
        "Empty: the CloudEvents envelope.",
    )
    signing_secret = models.CharField(
        max_length=200,
        default=defaults.new_signing_secret,
        help_text="Standard Webhooks secret (whsec_…) that signs every call.",
    )
    send_actor = models.BooleanField(
        default=True,
        help_text="DB types: add who made the change to the event data as `actor` (the "
        "request's user, the management command, or eventing.actor()) when it is known.",
    )
    cron_expression = models.CharField(
        max_length=200,
        blank=True,
        help_text='CRON only: when to fire, five cron fields, e.g. "*/5 * * * *" or "0 9 * * 1-5".',
    )
    cron_timezone = models.CharField(
        max_length=64,
        default="UTC",
        blank=True,
        help_text="CRON only: the IANA timezone the expression is read in, e.g. Europe/Paris.",
    )
    cron_payload = models.JSONField(
        default=dict,
        blank=True,
        help_text="CRON only: what every tick sends as data.payload, next to the trigger's name "
        "and the tick's scheduled_time.",
    )
    cron_skip_missed = models.BooleanField(
        default=False,
        help_text="CRON only: when on, a tick missed while beat was down is dropped; when off, "
        "the latest missed tick fires once when beat is back.",
    )
    cron_last_tick = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="CRON only: the last tick handled (fired or skipped); ticks up to it never "
        "fire again.",
    )
    ordering_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="Payload path (e.g. pk or new.customer_id): events with the same value are "
        "delivered strictly in the order they were recorded, one at a time. Empty: unordered.",
    )
    rate_limit = models.FloatField(
        "rate limit (events/s)",
        null=True,
        blank=True,
        validators=[MinValueValidator(0.01), MaxValueValidator(100_000)],
        help_text="Most events sent per second, across all workers; the rest wait as staged "
        "without using attempts. Empty: no limit.",
    )
    max_in_flight = models.PositiveIntegerField(
        "max in flight",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Most requests to this webhook at once, across all workers; the rest wait as "
        "staged without using attempts. Empty: no limit.",
    )
    description = models.TextField(blank=True, help_text="What this trigger is for.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When it was last changed.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_triggers"
        verbose_name = "trigger"
        verbose_name_plural = "triggers"
        ordering = ("name",)
        indexes = [models.Index(fields=["type", "source"], name="event_triggers_type_src")]

    def __str__(self) -> str:
        return self.name

    @property
    def transformed(self) -> bool:
        """Whether any part of the request is shaped by the transform."""
        return bool(
            self.transform_method != "POST"
            or self.transform_url
            or self.transform_query
            or self.transform_headers
            or self.transform_body
        )

    @property
    def throttled(self) -> bool:
        """Whether deliveries of this trigger pass the rate limit or the in-flight cap."""
        return bool(self.rate_limit or self.max_in_flight)

    def clean(self) -> None:
        from .validation import validate_trigger

        validate_trigger(self)


class EventType(models.Model):
    """A custom event type: its payload schema and who may queue it over HTTP."""

    class QueueRule(models.TextChoices):
        DENY = "deny", "Deny"
        ALLOW = "allow", "Allow anyone"
        AUTHENTICATED = "authenticated", "Authenticated users"
        PERMISSION = "permission", "Users with eventing.queue_event"

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[name_validator],
        help_text='Custom event type name; "default" holds the fallback queue rule.',
    )
    description = models.TextField(blank=True, help_text="What events of this type mean.")
    schema = models.JSONField(
        null=True,
        blank=True,
        help_text="JSON Schema the payload must satisfy. Empty: any JSON.",
    )
    queue_rule = models.CharField(
        max_length=20,
        choices=QueueRule.choices,
        default=QueueRule.DENY,
        help_text="Who may queue this type over the HTTP API.",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When it was last changed.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_types"
        verbose_name = "event type"
        verbose_name_plural = "event types"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .validation import validate_event_type

        validate_event_type(self)
