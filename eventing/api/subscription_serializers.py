"""Serializers of the owners' API: subscriptions, their deliveries, the event catalog.

Input is checked by eventing.subscriptions.services (one rule set for the API and the portal);
these classes only shape JSON and describe it to the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from eventing.api.serializers import EventDetailSerializer
from eventing.models import Subscription
from eventing.subscriptions.catalog import MAX_TYPES
from eventing.subscriptions.services import MAX_URL_LENGTH
from triggers import types


class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as its owner sees it (the secret only in the create answer)."""

    url = serializers.CharField(source="trigger.url", max_length=MAX_URL_LENGTH)
    types = serializers.ListField(
        child=serializers.RegexField(types.NAME_RE.pattern, max_length=100),
        min_length=1,
        max_length=MAX_TYPES,
        help_text="Catalog types it receives.",
    )
    filter = serializers.DictField(
        required=False, help_text='Match on the payload, e.g. {"status": "paid"}.'
    )
    paused = serializers.BooleanField(source="trigger.paused", read_only=True)
    paused_reason = serializers.CharField(source="trigger.paused_reason", read_only=True)

    class Meta:
        model = Subscription
        fields = (
            "id",
            "url",
            "types",
            "filter",
            "description",
            "enabled",
            "paused",
            "paused_reason",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "paused", "paused_reason", "created_at", "updated_at")

    def owner_changes(self) -> dict[str, Any]:
        """The validated input as the services take it (url flattened out of `trigger`)."""
        data = dict(self.validated_data)
        trigger = data.pop("trigger", None)
        if trigger and "url" in trigger:
            data["url"] = trigger["url"]
        return data


class CreatedSubscriptionSerializer(SubscriptionSerializer):
    """The create answer: the subscription and its signing secret, shown this once."""

    secret = serializers.CharField(read_only=True, help_text="whsec_… signing secret.")

    class Meta(SubscriptionSerializer.Meta):
        fields = (*SubscriptionSerializer.Meta.fields, "secret")
        read_only_fields = fields


class SecretSerializer(serializers.Serializer):
    """A new signing secret; the previous one signs beside it until `previous_valid_until`."""

    secret = serializers.CharField()
    previous_valid_until = serializers.DateTimeField(allow_null=True)


class TestSendSerializer(serializers.Serializer):
    """A test send: one of the subscription's types, and a payload (default: the example)."""

    type = serializers.RegexField(types.NAME_RE.pattern, max_length=100, required=False)
    payload = serializers.JSONField(required=False)


class TestSendResultSerializer(serializers.Serializer):
    """What a test send did."""

    delivered = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField()
    remark = serializers.CharField(allow_blank=True)
    event = EventDetailSerializer()


class DeliverySerializer(EventDetailSerializer):
    """One event delivered to a subscription, with every attempt."""

    class Meta(EventDetailSerializer.Meta):
        fields = tuple(
            name
            for name in EventDetailSerializer.Meta.fields
            if name not in ("trigger", "idempotency_key", "batch_id", "source")
        )
        read_only_fields = fields


class CatalogEntrySerializer(serializers.Serializer):
    """A public event type: what it means, its payload's schema and an example."""

    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    version = serializers.CharField()
    schema = serializers.JSONField(allow_null=True)
    example = serializers.JSONField(allow_null=True)
