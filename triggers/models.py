"""Trigger and EventType: what to call, for which events, and who may queue custom events."""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from . import defaults
from .database import EventsDatabaseManager
from .types import NAME_RE

# Longest delay or backoff a trigger may ask for: beyond a year is a typo, and far beyond it
# overflows date arithmetic.
MAX_DELAY_S = 366 * 24 * 3600

name_validator = RegexValidator(
    NAME_RE, "Use only letters, digits and underscores.", code="invalid_name"
)


class Trigger(models.Model):
    """A webhook called for every event of one type (and source) that passes its filter."""

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
    signing_secret = models.CharField(
        max_length=200,
        default=defaults.new_signing_secret,
        help_text="Standard Webhooks secret (whsec_…) that signs every call.",
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
