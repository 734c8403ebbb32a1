"""Signing secrets with overlap: a rotated secret keeps signing beside the new one for a while.

Standard Webhooks lets a request carry several `v1,` signatures; a receiver accepts the request
when any one verifies, so it can switch to the new secret at any time during the grace period.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from eventing.conf import settings
from eventing.models import RetiredSecret
from triggers.defaults import new_signing_secret
from triggers.models import Trigger


def rotate_secret(trigger: Trigger, grace_s: float | None = None) -> str:
    """Give `trigger` a fresh `whsec_` secret and keep the old one signing beside it for
    `grace_s` (EVENTING["SECRET_ROTATION_GRACE_S"] by default); returns the new secret."""
    grace = settings.SECRET_ROTATION_GRACE_S if grace_s is None else grace_s
    with transaction.atomic(using=Trigger.objects.db):
        locked = Trigger.objects.select_for_update().get(pk=trigger.pk)
        retire_secret(locked, locked.signing_secret, grace)
        locked.signing_secret = new_signing_secret()
        # A Trigger save drops this process's trigger cache; other processes reload within
        # TRIGGER_CACHE_TTL_S, the new secret and the retired ones in the same read.
        locked.save(update_fields=["signing_secret", "updated_at"])
    trigger.signing_secret = locked.signing_secret
    return locked.signing_secret


def retire_secret(trigger: Trigger, secret: str, grace_s: float) -> RetiredSecret | None:
    """Keep `secret` signing for `trigger` for `grace_s` seconds more (none when 0)."""
    if grace_s <= 0 or not secret:
        return None
    expires = timezone.now() + dt.timedelta(seconds=grace_s)
    # Expired ones are of no further use; the table holds only what still signs.
    RetiredSecret.objects.filter(trigger=trigger, expires_at__lte=timezone.now()).delete()
    return RetiredSecret.objects.create(trigger=trigger, secret=secret, expires_at=expires)


def signing_secrets(trigger: Trigger, now: dt.datetime | None = None) -> list[str]:
    """The secrets that sign a request of `trigger`: its own first, then the retired ones still
    within their grace period, newest first."""
    if getattr(trigger, "pk", None) is None:
        # An unsaved trigger (a preview, a unit test) has nothing retired.
        return [trigger.signing_secret]
    now = now or timezone.now()
    retired = [
        row
        for row in trigger.retired_secrets.all()
        if row.expires_at > now and row.secret != trigger.signing_secret
    ]
    retired.sort(key=lambda row: row.created_at, reverse=True)
    return [trigger.signing_secret, *(row.secret for row in retired)]
