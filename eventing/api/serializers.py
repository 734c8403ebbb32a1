"""Serializers of the API: what each endpoint takes and returns, validated field by field."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from eventing.conf import settings
from eventing.models import FINAL_STATUSES, EventLog, EventStatus, InvocationLog, TriggerCircuit
from eventing.recording.emit import resolve_due
from eventing.recording.rules import django_validation_detail
from triggers import fields as trigger_fields
from triggers import types
from triggers.masking import MASK, mask_headers, unmask_headers
from triggers.models import EventType, Trigger


def check_custom_type(value: str) -> str:
    """Custom type names only: letters, digits, underscores; DB_ and FILE_ are ours."""
    if not types.NAME_RE.match(value):
        raise serializers.ValidationError("Use only letters, digits and underscores.")
    if not types.is_custom_type(value):
        raise serializers.ValidationError(
            f"{value!r}: DB_* and FILE_* events come from database and storage writes; only "
            "custom types can be queued."
        )
    return value


def due_time(deliver_at: dt.datetime | None, delay_s: float | None) -> dt.datetime:
    """When an event is due, or a ValidationError naming the field (not both, not too far)."""
    if deliver_at is not None and delay_s is not None:
        raise serializers.ValidationError(
            {"delay_s": "Give either a delay or a delivery time, not both."}
        )
    ahead = float(settings.MAX_SCHEDULE_AHEAD_S)
    if delay_s is not None and delay_s > ahead:
        # Checked before any arithmetic: a huge delay would overflow a timedelta.
        raise serializers.ValidationError(
            {"delay_s": f"At most {ahead:g} s ahead (EVENTING['MAX_SCHEDULE_AHEAD_S'])."}
        )
    try:
        return resolve_due(deliver_at=deliver_at, delay_s=delay_s)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(django_validation_detail(exc)) from None
    except OverflowError:
        raise serializers.ValidationError({"deliver_at": "Out of range."}) from None


def custom_type_field() -> serializers.RegexField:
    """The `type` of a queued event: a custom type name, never DB_* or FILE_*."""
    return serializers.RegexField(
        types.NAME_RE.pattern,
        max_length=100,
        validators=[check_custom_type],
        error_messages={"invalid": "Use only letters, digits and underscores."},
        help_text="Custom event type name (not DB_* or FILE_*).",
    )


class EventCreateSerializer(serializers.Serializer):
    """One custom event to queue (POST /api/eventing/events/, alone or in a list)."""

    type = custom_type_field()
    payload = serializers.JSONField(
        required=False,
        allow_null=True,
        default=dict,
        help_text="Any JSON; checked against the type's JSON Schema. Missing or null: {}.",
    )
    deliver_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When to deliver (RFC 3339). Default: now."
    )
    delay_s = serializers.FloatField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="Deliver this many seconds from now (instead of deliver_at).",
    )
    source = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        help_text="Free text naming the producer; kept on the event.",
    )
    idempotency_key = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=200,
        min_length=1,
        help_text="A repeat with the same key and type returns the first events (200).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Resolve the due time; a null payload is {}."""
        attrs["due"] = due_time(attrs.pop("deliver_at", None), attrs.pop("delay_s", None))
        if attrs.get("payload") is None:
            attrs["payload"] = {}
        return attrs


class SpaceCloudTimestampField(serializers.DateTimeField):
    """RFC 3339 time; an empty string (as Space Cloud clients send by default) means none."""

    def to_internal_value(self, value):
        """None for "" or null, else an aware datetime."""
        if value in ("", None):
            return None
        return super().to_internal_value(value)


class SpaceCloudQueueSerializer(serializers.Serializer):
    """The body of `POST /v1/api/<project>/eventing/queue`, as Space Cloud clients send it."""

    type = custom_type_field()
    payload = serializers.JSONField(
        required=False, allow_null=True, default=dict, help_text="Any JSON. Missing or null: {}."
    )
    delay = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="Milliseconds added to `timestamp` (or to now without one).",
    )
    timestamp = SpaceCloudTimestampField(
        required=False,
        allow_null=True,
        help_text="Deliver at this time (RFC 3339), plus `delay`. Missing or empty: now.",
    )
    options = serializers.JSONField(
        required=False, allow_null=True, help_text="Accepted for compatibility; unused."
    )
    isSynchronous = serializers.BooleanField(  # noqa: N815 - Space Cloud's wire name
        required=False,
        default=False,
        help_text="Deliver now to every matching trigger and answer with the webhook's reply.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Resolve the due time as Space Cloud does: `timestamp` (default now) plus `delay`."""
        attrs["due"] = space_cloud_due(attrs.pop("timestamp", None), attrs.pop("delay", None))
        if attrs.get("payload") is None:
            attrs["payload"] = {}
        return attrs


class SpaceCloudAdminQueueSerializer(serializers.Serializer):
    """The body of `POST /v1/api/<project>/eventing/admin-queue`: a batch of queue bodies."""

    events = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        help_text="Each as the body of the queue endpoint; queued asynchronously, in one batch.",
    )


def space_cloud_due(timestamp: dt.datetime | None, delay_ms: int | None) -> dt.datetime:
    """`timestamp` (or now) plus `delay_ms`: Space Cloud's clients send both on every event."""
    ahead_ms = float(settings.MAX_SCHEDULE_AHEAD_S) * 1000
    if delay_ms and delay_ms > ahead_ms:
        # Checked before any arithmetic: a huge delay would overflow a timedelta.
        raise serializers.ValidationError(
            {"delay": f"At most {ahead_ms:.0f} ms ahead (EVENTING['MAX_SCHEDULE_AHEAD_S'])."}
        )
    if not delay_ms:
        deliver_at, delay_s = timestamp, None
    elif timestamp is None:
        deliver_at, delay_s = None, delay_ms / 1000
    else:
        try:
            deliver_at, delay_s = timestamp + dt.timedelta(milliseconds=delay_ms), None
        except OverflowError:
            raise serializers.ValidationError({"timestamp": "Out of range."}) from None
    try:
        return due_time(deliver_at, delay_s)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError(rename_fields(exc.detail)) from None


def rename_fields(detail: Any) -> Any:
    """Space Cloud names: delay_s → delay, deliver_at → timestamp."""
    names = {"delay_s": "delay", "deliver_at": "timestamp"}
    if isinstance(detail, dict):
        return {names.get(key, key): value for key, value in detail.items()}
    return detail


class InvocationSerializer(serializers.ModelSerializer):
    """One delivery attempt."""

    class Meta:
        model = InvocationLog
        fields = (
            "attempt",
            "invoked_at",
            "duration_ms",
            "request",
            "response_status_code",
            "response_headers",
            "response_body",
            "error_msg",
            "succeeded",
        )


class InvocationListSerializer(InvocationSerializer):
    """One delivery attempt in the list across events: with its event and trigger."""

    event = serializers.UUIDField(source="event_id", read_only=True)
    trigger = serializers.CharField(source="event.trigger_name", read_only=True)
    type = serializers.CharField(source="event.type", read_only=True)

    class Meta(InvocationSerializer.Meta):
        fields = ("id", "event", "trigger", "type", *InvocationSerializer.Meta.fields)
        read_only_fields = fields


class InvocationFilterSerializer(serializers.Serializer):
    """Query parameters of the invocation list."""

    trigger = serializers.RegexField(types.NAME_RE.pattern, required=False, max_length=100)
    status_code = serializers.IntegerField(required=False, min_value=100, max_value=599)
    succeeded = serializers.BooleanField(required=False, allow_null=True, default=None)
    invoked_after = serializers.DateTimeField(required=False)
    invoked_before = serializers.DateTimeField(required=False)


class EventSerializer(serializers.ModelSerializer):
    """An event row (one event for one trigger)."""

    trigger = serializers.CharField(source="trigger_name", read_only=True)

    class Meta:
        model = EventLog
        fields = (
            "id",
            "batch_id",
            "type",
            "trigger",
            "source",
            "payload",
            "status",
            "attempts",
            "deliver_at",
            "created_at",
            "processed_at",
            "last_status_code",
            "remark",
            "idempotency_key",
        )
        read_only_fields = fields


class EventDetailSerializer(EventSerializer):
    """An event with every delivery attempt."""

    invocations = InvocationSerializer(many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = (*EventSerializer.Meta.fields, "invocations")
        read_only_fields = fields


class QueuedSerializer(serializers.Serializer):
    """What one queued event became: a row per matching trigger (none if nothing matched)."""

    created = serializers.BooleanField(help_text="False when an idempotent repeat.")
    events = EventSerializer(many=True)


class QueuedBatchSerializer(serializers.Serializer):
    """The result of a batch, in the order of the request."""

    count = serializers.IntegerField(help_text="Event rows recorded or found.")
    results = QueuedSerializer(many=True)


class SpaceCloudQueuedSerializer(serializers.Serializer):
    """Answer of the queue endpoint: the event ids; `result` only in synchronous mode."""

    event_ids = serializers.ListField(
        child=serializers.UUIDField(), help_text="One event per matching trigger."
    )
    batch_id = serializers.UUIDField(allow_null=True, help_text="Null when nothing matched.")
    result = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text=(
            "Synchronous mode: the `response` member of the reply of the first trigger that "
            "accepted it; the whole reply when it has no `response` member."
        ),
    )


class SpaceCloudBatchQueuedSerializer(serializers.Serializer):
    """Answer of the admin queue endpoint: the ids of every event recorded."""

    event_ids = serializers.ListField(
        child=serializers.UUIDField(), help_text="One event per matching trigger and event."
    )


class RescheduleSerializer(serializers.Serializer):
    """PATCH body of an event: its new delivery time."""

    deliver_at = serializers.DateTimeField(help_text="New delivery time (RFC 3339).")

    def validate_deliver_at(self, value: dt.datetime) -> dt.datetime:
        """Within MAX_SCHEDULE_AHEAD_S; a past time means now."""
        return due_time(value, None)


class EventFilterSerializer(serializers.Serializer):
    """Query parameters of the event list."""

    status = serializers.ChoiceField(choices=EventStatus.choices, required=False)
    type = serializers.RegexField(types.NAME_RE.pattern, required=False, max_length=100)
    trigger = serializers.RegexField(types.NAME_RE.pattern, required=False, max_length=100)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class ReplaySerializer(serializers.Serializer):
    """Body of a replay: the window of finished events to deliver again."""

    trigger = serializers.RegexField(
        types.NAME_RE.pattern, required=False, max_length=100, help_text="Only this trigger's."
    )
    type = serializers.RegexField(
        types.NAME_RE.pattern, required=False, max_length=100, help_text="Only this type's."
    )
    since = serializers.DateTimeField(help_text="Events created at or after this time.")
    until = serializers.DateTimeField(help_text="Events created before this time.")
    # The choices are the event list's own (one enum in the OpenAPI schema: a second, smaller
    # one named `status` is drf_spectacular.W001 in every project's `check --deploy`).
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=EventStatus.choices),
        default=[EventStatus.FAILED.value],
        allow_empty=False,
        help_text="Finished statuses to redeliver: processed, failed, cancelled (default: failed).",
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Only count the events per trigger; change nothing."
    )

    def validate_status(self, value: list[str]) -> list[str]:
        """Only finished events are delivered again."""
        unfinished = sorted({status for status in value if status not in FINAL_STATUSES})
        if unfinished:
            raise serializers.ValidationError(
                f"{', '.join(unfinished)}: only finished events (processed, failed, cancelled) "
                "are replayed"
            )
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A trigger or a type, and a window that ends after it starts."""
        if not attrs.get("trigger") and not attrs.get("type"):
            raise serializers.ValidationError({"trigger": "Name a trigger or a type."})
        if attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "The window must end after it starts."})
        return attrs


class ReplayResultSerializer(serializers.Serializer):
    """What a replay did (or, in a dry run, would do)."""

    dry_run = serializers.BooleanField()
    count = serializers.IntegerField(help_text="Events staged again (dry run: that would be).")
    by_trigger = serializers.DictField(child=serializers.IntegerField())


class TestTriggerSerializer(serializers.Serializer):
    """Body of a trigger test: the payload to send (default {"test": true})."""

    payload = serializers.JSONField(required=False, allow_null=True)


class TestTriggerResultSerializer(serializers.Serializer):
    """What a test delivery did."""

    delivered = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField(help_text="The event's status after the attempt.")
    remark = serializers.CharField(allow_blank=True)
    response = serializers.JSONField(allow_null=True, help_text="The reply (JSON or text).")
    event = EventDetailSerializer()


class ModelCleanMixin:
    """Run the model's full_clean() (field validators and clean()) like the admin does."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Apply attrs to a copy of the instance and full_clean it; keep normalised values."""
        model = self.Meta.model
        instance = model() if self.instance is None else model.objects.get(pk=self.instance.pk)
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(django_validation_detail(exc)) from None
        return {name: getattr(instance, name) for name in attrs}


class CircuitSerializer(serializers.ModelSerializer):
    """A trigger's circuit breaker: closed or open, failures, when it probes next."""

    class Meta:
        model = TriggerCircuit
        fields = (
            "state",
            "consecutive_failures",
            "failing_since",
            "opened_at",
            "next_probe_at",
            "last_error",
        )
        read_only_fields = fields


class TriggerSerializer(ModelCleanMixin, serializers.ModelSerializer):
    """A trigger, validated exactly as the admin validates it."""

    class Meta:
        model = Trigger
        # The declared fields (triggers.fields) and the circuit breaker's state.
        fields = (*trigger_fields.serializer_fields(), "circuit")
        read_only_fields = trigger_fields.READ_ONLY
        extra_kwargs = {"signing_secret": {"required": False}}

    circuit = serializers.SerializerMethodField(
        help_text="The circuit breaker's state (null: no failure counted yet)."
    )

    @extend_schema_field(CircuitSerializer(allow_null=True))
    def get_circuit(self, instance: Trigger) -> dict[str, Any] | None:
        """The trigger's circuit row, if it has one."""
        row = getattr(instance, "circuit", None)
        return CircuitSerializer(row).data if row is not None else None

    def to_representation(self, instance: Trigger) -> dict[str, Any]:
        """Credentials stay out of responses: header values and the signing secret are masked,
        except the secret in the answer to the request that created the trigger."""
        data = super().to_representation(instance)
        data["headers"] = mask_headers(data.get("headers"))
        if not self.context.get("reveal_secret"):
            data["signing_secret"] = MASK
        return data

    def validate_headers(self, value: Any) -> Any:
        """A masked value sent back keeps the stored one (what GET showed can be PATCHed)."""
        stored = self.instance.headers if self.instance is not None else []
        try:
            return unmask_headers(value, stored)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_signing_secret(self, value: str) -> str:
        """The mask sent back keeps the stored secret."""
        if value == MASK and self.instance is not None:
            return self.instance.signing_secret
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Also bound the delays: beyond MAX_SCHEDULE_AHEAD_S a due time cannot be computed."""
        limit = float(settings.MAX_SCHEDULE_AHEAD_S)
        for name in ("delay_s", "backoff_base_s", "backoff_max_s"):
            if name in attrs and attrs[name] > limit:
                raise serializers.ValidationError(
                    {name: f"At most {limit:g} s (EVENTING['MAX_SCHEDULE_AHEAD_S'])."}
                )
        return super().validate(attrs)


class EventTypeSerializer(ModelCleanMixin, serializers.ModelSerializer):
    """A custom event type: JSON Schema of its payload and its queue rule."""

    class Meta:
        model = EventType
        fields = ("name", "description", "schema", "queue_rule", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")
