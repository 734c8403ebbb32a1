"""Subscriptions' operations, one function each, for the API, the portal and Mission Control.

Every function that takes an owner acts on that owner's subscriptions only: a subscription of
another owner is `Subscription.DoesNotExist` (a 404), never a refusal that would confirm it
exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from eventing.conf import settings
from eventing.delivery import synchronous
from eventing.delivery.deliver import DeliveryResult
from eventing.dispatch.operations import cancel_events, redeliver_events
from eventing.models import SUBSCRIPTION_TYPE, EventLog, Subscription
from eventing.owners import OwnerKey, owner_key
from eventing.recording.emit import record_events
from eventing.recording.payload_rules import check_payload
from eventing.store.secrets import rotate_secret
from eventing.subscriptions.catalog import example_of, validate_types
from eventing.webhooks.ssrf import url_warning
from triggers.models import Trigger
from triggers.registry import TriggerSpec
from triggers.validation import (
    ENV_PLACEHOLDER_RE,
    validate_filter,
    validate_storable,
    validate_url,
)

# Longest URL an owner may give (the trigger's column).
MAX_URL_LENGTH = 2000
# Fields an owner may change.
EDITABLE = ("url", "types", "filter", "description", "enabled")


def subscriptions_of(owner: Any) -> QuerySet[Subscription]:
    """The owner's subscriptions, newest first, with their triggers."""
    return Subscription.objects.filter(**key_of(owner).filter()).select_related("trigger")


def owned_subscription(owner: Any, subscription_id: Any) -> Subscription:
    """The owner's subscription with this id; Subscription.DoesNotExist for any other id,
    another owner's included."""
    try:
        return subscriptions_of(owner).get(pk=subscription_id)
    except (ValueError, ValidationError):
        # Not a UUID: no such subscription, answered like any other unknown id.
        raise Subscription.DoesNotExist from None


def key_of(owner: Any) -> OwnerKey:
    """The owner's key; an OwnerKey passes through."""
    return owner if isinstance(owner, OwnerKey) else owner_key(owner)


def validate_owner_url(url: Any) -> str:
    """An absolute http(s) URL an outsider may give: no placeholders (they would read the
    server's environment), not resolving to a blocked address today (the send-time guard
    still checks the address each delivery connects to)."""
    if not isinstance(url, str) or not url:
        raise ValidationError({"url": "Give the endpoint's URL."})
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError({"url": f"At most {MAX_URL_LENGTH} characters."})
    if ENV_PLACEHOLDER_RE.search(url) or "{{" in url:
        raise ValidationError({"url": "The URL may not contain {{ placeholders }}."})
    validate_url(url, placeholders=False)
    warning = url_warning(url)
    if warning:
        raise ValidationError({"url": warning})
    return url


def validate_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The owner-given fields checked one by one; ValidationError naming the field."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError({unknown[0]: "Not a field of a subscription."})
    clean = dict(changes)
    if "url" in clean:
        clean["url"] = validate_owner_url(clean["url"])
    if "types" in clean:
        clean["types"] = validate_types(clean["types"])
    if "filter" in clean:
        clean["filter"] = {} if clean["filter"] is None else clean["filter"]
        validate_filter(clean["filter"])
        validate_storable(clean["filter"], "filter")
    if "description" in clean:
        description = clean["description"] or ""
        if not isinstance(description, str) or len(description) > 500:
            raise ValidationError({"description": "Text of at most 500 characters."})
        validate_storable(description, "description")
        clean["description"] = description
    if "enabled" in clean and not isinstance(clean["enabled"], bool):
        raise ValidationError({"enabled": "true or false."})
    return clean


def create_subscription(
    owner: Any,
    *,
    url: str,
    types: list[str],
    filter: dict | None = None,
    description: str = "",
    enabled: bool = True,
) -> tuple[Subscription, str]:
    """A new subscription of `owner` and its delivering trigger; returns it and its secret
    (shown to the owner this once)."""
    key = key_of(owner)
    clean = validate_changes(
        {
            "url": url,
            "types": types,
            "filter": filter,
            "description": description,
            "enabled": enabled,
        }
    )
    with transaction.atomic(using=Subscription.objects.db):
        # Counted under a lock on the owner's rows, so two requests cannot both take the last.
        taken = len(list(Subscription.objects.select_for_update().filter(**key.filter())))
        if taken >= settings.OWNER_MAX_SUBSCRIPTIONS:
            raise ValidationError(
                {
                    "url": f"This account has {taken} subscriptions, the most allowed "
                    "(EVENTING['OWNER_MAX_SUBSCRIPTIONS']); delete one first."
                }
            )
        subscription = Subscription(
            owner_model=key.model,
            owner_id=key.pk,
            types=clean["types"],
            filter=clean["filter"],
            description=clean["description"],
            enabled=clean["enabled"],
        )
        subscription.trigger = Trigger.objects.create(
            name=f"sub_{subscription.id.hex}",
            type=SUBSCRIPTION_TYPE,
            url=clean["url"],
            enabled=clean["enabled"],
            # One owner's slow or failing endpoint holds at most this many worker slots, and
            # sends at most this rate: other owners' deliveries never queue behind it.
            max_in_flight=settings.SUBSCRIPTION_MAX_IN_FLIGHT,
            rate_limit=settings.SUBSCRIPTION_RATE_LIMIT,
            send_actor=False,
            description=f"Subscription of {key.model} {key.pk}",
        )
        subscription.save(force_insert=True)
    return subscription, subscription.trigger.signing_secret


def update_subscription(subscription: Subscription, changes: dict[str, Any]) -> Subscription:
    """Apply an owner's changes (url, types, filter, description, enabled)."""
    clean = validate_changes(changes)
    with transaction.atomic(using=Subscription.objects.db):
        trigger = subscription.trigger
        trigger_fields = []
        if "url" in clean:
            trigger.url = clean.pop("url")
            trigger_fields.append("url")
        if "enabled" in clean:
            trigger.enabled = clean["enabled"]
            trigger_fields.append("enabled")
        if trigger_fields:
            trigger.save(update_fields=[*trigger_fields, "updated_at"])
        for name, value in clean.items():
            setattr(subscription, name, value)
        subscription.save()
    return subscription


def delete_subscription(subscription: Subscription) -> None:
    """Delete a subscription and its trigger; its unfinished events are cancelled, its logs kept."""
    with transaction.atomic(using=Subscription.objects.db):
        waiting = EventLog.objects.filter(
            trigger_id=subscription.trigger_id, status__in=("staged", "intent")
        ).values_list("id", flat=True)
        cancel_events(list(waiting), reason="Subscription deleted")
        subscription.trigger.delete()


def rotate_subscription_secret(subscription: Subscription) -> str:
    """A new signing secret; the old one keeps signing for the grace period. Returns the new."""
    return rotate_secret(subscription.trigger)


@dataclass
class TestSend:
    """A test event sent to a subscription, and what its delivery did."""

    event: EventLog
    result: DeliveryResult

    @property
    def delivered(self) -> bool:
        return synchronous.delivered(self.result)


def send_test(
    subscription: Subscription, event_type: str | None = None, payload: Any = None
) -> TestSend:
    """Record an event for this subscription only (its filter aside) and deliver it now,
    through the same delivery as any other; the catalog's example is the default payload."""
    event_type = event_type or subscription.types[0]
    if event_type not in subscription.types:
        raise ValidationError({"type": "One of this subscription's types."})
    payload = example_of(event_type) if payload is None else payload
    check_payload(payload)
    spec = TriggerSpec.from_trigger(subscription.trigger, delay_s=0.0, ordering_key="")
    [event] = record_events(
        event_type, [(spec, payload)], source="test", due=timezone.now(), publish=False
    )
    [result] = synchronous.deliver_now([event])
    return TestSend(event=EventLog.objects.get(pk=event.pk), result=result)


def deliveries_of(subscription: Subscription) -> QuerySet[EventLog]:
    """The subscription's events, newest first, with their attempts."""
    return (
        EventLog.objects.filter(trigger_id=subscription.trigger_id)
        .prefetch_related("invocations")
        .order_by("-created_at", "-id")
    )


def owned_delivery(subscription: Subscription, event_id: Any) -> EventLog:
    """One event of this subscription; EventLog.DoesNotExist for any other id."""
    try:
        return deliveries_of(subscription).get(pk=event_id)
    except (ValueError, ValidationError):
        raise EventLog.DoesNotExist from None


def redeliver(subscription: Subscription, event_id: Any) -> EventLog:
    """Stage a finished event of this subscription again (fresh retry budget, logs kept).

    EventLog.DoesNotExist for another subscription's event; ValidationError when it is not
    finished yet."""
    event = owned_delivery(subscription, event_id)
    if not redeliver_events([event.pk]):
        raise ValidationError(
            {"event": f"Event {event.pk} is {event.status}: only a finished event is redelivered."}
        )
    return EventLog.objects.get(pk=event.pk)
