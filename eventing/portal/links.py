"""Signed, short-lived, single-use links that open an owner's portal session."""

from __future__ import annotations

import secrets
from typing import Any

from django.core import signing
from django.core.cache import caches
from django.http import HttpRequest
from django.urls import reverse

from eventing.conf import settings
from eventing.owners import owner_key

# Django's signing keys the HMAC on SECRET_KEY and this salt: a value signed for another
# purpose (a session, a password reset) never passes for a portal link.
LINK_SALT = "eventing.portal.link"
USED_KEY = "eventing:portal-link-used:{nonce}"


class LinkRefused(Exception):
    """A portal link that is tampered with, expired, already used or names no owner."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def portal_url(owner: Any, *, request: HttpRequest | None = None, base_url: str = "") -> str:
    """A link that opens `owner`'s portal once, within EVENTING["PORTAL_LINK_MAX_AGE_S"].

    The path is absolute on this site; with `request` (or `base_url`, e.g.
    "https://app.example.com") the whole URL. Give it to the owner's browser at once (a
    redirect, an iframe's src): it works once and expires within minutes.
    """
    key = owner_key(owner)
    token = signing.dumps(
        {"m": key.model, "o": key.pk, "n": secrets.token_urlsafe(16)},
        salt=LINK_SALT,
        compress=True,
    )
    path = reverse("eventing_portal:enter", kwargs={"token": token})
    if request is not None:
        return request.build_absolute_uri(path)
    return base_url.rstrip("/") + path


def read_link(token: str) -> tuple[str, str]:
    """The (model label, owner pk) a link names, after its signature, age and single use are
    checked; LinkRefused otherwise."""
    try:
        claims = signing.loads(token, salt=LINK_SALT, max_age=settings.PORTAL_LINK_MAX_AGE_S)
    except signing.SignatureExpired:
        raise LinkRefused("This portal link has expired: ask for a new one.") from None
    except signing.BadSignature:
        raise LinkRefused("This portal link is not valid: ask for a new one.") from None
    if not (isinstance(claims, dict) and {"m", "o", "n"} <= claims.keys()):
        raise LinkRefused("This portal link is not valid: ask for a new one.")
    # One use: the first opening records the nonce until the link would have expired anyway,
    # so a link copied from a history, a log or a proxy opens nothing.
    cache = caches[settings.THROTTLE_CACHE]
    if not cache.add(USED_KEY.format(nonce=claims["n"]), 1, settings.PORTAL_LINK_MAX_AGE_S + 1):
        raise LinkRefused("This portal link was already used: ask for a new one.")
    return claims["m"], claims["o"]
