"""Owners' subscriptions, the public event catalog and retired signing secrets (tables).

A subscription delivers through a trigger of its own (`trigger`, one-to-one): the event rows,
the delivery chain, retries, ordering, rate limits, the circuit, signing, redelivery and the
invocation logs are the operators' triggers' own. The trigger's type is SUBSCRIPTION_TYPE, a
name `emit()` refuses, so the trigger index never matches it: only the owner's fan-out
(eventing.recording.subscriptions) records rows for it.
"""

import uuid

from django.db import models

from triggers.database import EventsDatabaseManager
from triggers.models import name_validator

# The type of every subscription's trigger: not a valid event type name, so no emitted event
# ever matches it by type.
SUBSCRIPTION_TYPE = "@subscription"


class Subscription(models.Model):
    """An owner's webhook endpoint for one or several public event types."""

    id = models.UUIDField(
        primary_key=True,
        default=uuid.uuid4,
        editable=False,
        help_text="Subscription id, as owners see it in the API and the portal.",
    )
    owner_model = models.CharField(
        max_length=100,
        help_text='The owner\'s model label (EVENTING["OWNER_MODEL"] when it was created).',
    )
    owner_id = models.CharField(max_length=100, help_text="The owner's primary key, as a string.")
    trigger = models.OneToOneField(
        "triggers.Trigger",
        on_delete=models.CASCADE,
        related_name="subscription",
        help_text="The trigger that delivers it: URL, signing secret, retries, limits.",
    )
    types = models.JSONField(
        default=list, help_text="Public event types (catalog names) it receives."
    )
    filter = models.JSONField(
        default=dict,
        blank=True,
        help_text='Match on the event data, e.g. {"status": "paid"}. Empty: every event.',
    )
    description = models.CharField(
        max_length=500, blank=True, help_text="What the owner uses it for."
    )
    enabled = models.BooleanField(
        default=True, help_text="When off, no events are recorded for it."
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When it was last changed.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_subscriptions"
        verbose_name = "subscription"
        verbose_name_plural = "subscriptions"
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["owner_model", "owner_id"], name="event_subscriptions_owner")
        ]

    def __str__(self) -> str:
        return f"{self.trigger.url if self.trigger_id else ''} ({self.owner_model}:{self.owner_id})"


class PublicEventType(models.Model):
    """An event type owners may subscribe to: the catalog's entry, documented and versioned.

    A custom type is emitted with `emit(name, payload, owner=…)`. A DB type is published from
    the model's DB events: `db_type` and `db_source` name them, `owner_path` finds the owner in
    the row, and only `payload_fields` of the row are sent (never the whole row).
    """

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[name_validator],
        help_text="Public name owners subscribe to: letters, digits and underscores.",
    )
    description = models.TextField(blank=True, help_text="What the event means, for owners.")
    schema = models.JSONField(
        null=True, blank=True, help_text="JSON Schema of its payload, shown in the catalog."
    )
    example = models.JSONField(
        null=True, blank=True, help_text="An example payload, shown and sent by test sends."
    )
    version = models.CharField(
        max_length=20, default="1", help_text="Version of the payload's shape, e.g. 1 or 2.1."
    )
    public = models.BooleanField(
        default=True, help_text="When off, it leaves the catalog and owners cannot subscribe."
    )
    db_type = models.CharField(
        max_length=20,
        blank=True,
        help_text="Publish DB events of this kind (DB_INSERT, DB_UPDATE or DB_DELETE) under "
        "the public name. Empty: a custom type, emitted by code.",
    )
    db_source = models.CharField(
        max_length=200, blank=True, help_text="With a DB type: the model (app_label.ModelName)."
    )
    owner_path = models.CharField(
        max_length=200,
        blank=True,
        help_text="With a DB type: the field of the row holding the owner's primary key, "
        "e.g. account_id.",
    )
    payload_fields = models.JSONField(
        default=list,
        blank=True,
        help_text="With a DB type: the fields of the row sent as the payload (required).",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was created.")
    updated_at = models.DateTimeField(auto_now=True, help_text="When it was last changed.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_catalog"
        verbose_name = "public event type"
        verbose_name_plural = "public event types"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class RetiredSecret(models.Model):
    """A trigger's previous signing secret, still signing beside the new one until it expires."""

    trigger = models.ForeignKey(
        "triggers.Trigger",
        on_delete=models.CASCADE,
        related_name="retired_secrets",
        help_text="The trigger (or subscription's trigger) it signed for.",
    )
    secret = models.CharField(max_length=200, help_text="The previous whsec_ secret.")
    expires_at = models.DateTimeField(
        help_text="Until when it still signs: receivers switch keys within this grace period."
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was retired.")

    objects = EventsDatabaseManager()

    class Meta:
        db_table = "event_retired_secrets"
        verbose_name = "retired signing secret"
        verbose_name_plural = "retired signing secrets"
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"secret of trigger {self.trigger_id} retired until {self.expires_at:%Y-%m-%d %H:%M}"
