"""Secret rotation with overlap: the old and the new secret both sign for the grace period."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from eventing.models import EventLog, RetiredSecret
from eventing.store.trigger_cache import get_trigger, invalidate
from eventing.webhooks.request import build_request
from mission_control.actions import rotate_signing_secret
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


def signed_request(trigger):
    event = EventLog(
        type="order_placed",
        trigger=trigger,
        trigger_name=trigger.name,
        payload={"id": 1},
        deliver_at=timezone.now(),
    )
    invalidate()
    return build_request(event, get_trigger(trigger.pk), attempt=1)


def verifies(secret: str, request) -> bool:
    headers = {k.lower(): v for k, v in request.headers.items()}
    try:
        Webhook(secret).verify(request.body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_operator_trigger_rotation_keeps_the_old_secret_signing():
    trigger = TriggerFactory()
    old = trigger.signing_secret

    new = rotate_signing_secret(trigger)
    request = signed_request(trigger)

    assert new != old
    assert request.headers["webhook-signature"].count("v1,") == 2
    assert verifies(old, request)
    assert verifies(new, request)
    assert not verifies(TriggerFactory().signing_secret, request)
    # Neither secret is stored in the invocation's copy of the request.
    assert old not in str(request.redacted_headers)
    assert new not in str(request.redacted_headers)


def test_after_the_grace_period_only_the_new_secret_signs():
    trigger = TriggerFactory()
    old = trigger.signing_secret
    new = rotate_signing_secret(trigger)
    RetiredSecret.objects.filter(trigger=trigger).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    request = signed_request(trigger)

    assert request.headers["webhook-signature"].count("v1,") == 1
    assert verifies(new, request)
    assert not verifies(old, request)


def test_no_grace_means_no_overlap(settings):
    settings.EVENTING = {**settings.EVENTING, "SECRET_ROTATION_GRACE_S": 0}
    trigger = TriggerFactory()
    old = trigger.signing_secret

    rotate_signing_secret(trigger)

    assert not verifies(old, signed_request(trigger))


def test_two_rotations_within_the_grace_sign_with_all_three():
    trigger = TriggerFactory()
    first = trigger.signing_secret
    second = rotate_signing_secret(trigger)
    third = rotate_signing_secret(trigger)

    request = signed_request(trigger)

    assert all(verifies(secret, request) for secret in (first, second, third))
