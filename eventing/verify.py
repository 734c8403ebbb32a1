"""For services that receive our webhooks: check the X-SC-Token and the signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from django.core.exceptions import PermissionDenied

from .signing import TOKEN_ROLE, secret_key_bytes

# How far a webhook-timestamp may be from our clock (Standard Webhooks uses 5 minutes).
TIMESTAMP_TOLERANCE_S = 5 * 60


class WebhookVerificationError(PermissionDenied):
    """The request did not come from us, or was altered or replayed."""


def verify_sc_token(header_value: str, secrets: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the claims of an `X-SC-Token` (with or without "Bearer "), checked against any
    of `secrets` (default: EVENTING["SECRETS"]); raise WebhookVerificationError otherwise."""
    if secrets is None:
        from .conf import settings

        secrets = settings.SECRETS
    token = (header_value or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        raise WebhookVerificationError("Missing X-SC-Token.")
    last_error: Exception | None = None
    for secret in secrets:
        try:
            claims = jwt.decode(
                token, secret, algorithms=["HS256"], options={"require": ["exp", "iat", "id"]}
            )
        except jwt.InvalidSignatureError as exc:
            last_error = exc
            continue
        except jwt.PyJWTError as exc:
            raise WebhookVerificationError(f"Invalid X-SC-Token: {exc}") from exc
        if claims.get("role") != TOKEN_ROLE:
            raise WebhookVerificationError("X-SC-Token has the wrong role.")
        return claims
    raise WebhookVerificationError(f"Invalid X-SC-Token: {last_error or 'no secret'}")


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def verify_signature(
    body: bytes, headers: Mapping[str, str], secret: str, *, now: float | None = None
) -> None:
    """Check the Standard Webhooks `webhook-signature` of `body`; raise if it does not match."""
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise WebhookVerificationError("Missing webhook-id, webhook-timestamp or signature.")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("Malformed webhook-timestamp.") from exc
    if abs((now if now is not None else time.time()) - sent_at) > TIMESTAMP_TOLERANCE_S:
        raise WebhookVerificationError("webhook-timestamp is too old or too new.")
    signed = f"{msg_id}.{sent_at}.".encode() + body
    expected = base64.b64encode(
        hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    ).decode()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise WebhookVerificationError("webhook-signature does not match.")


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Sequence[str] | None = None,
    signing_secret: str | None = None,
) -> dict[str, Any]:
    """Check a whole webhook request: its X-SC-Token and, given the trigger's `whsec_` secret,
    its signature. Returns the token's claims; raises WebhookVerificationError."""
    claims = verify_sc_token(_header(headers, "x-sc-token"), secrets)
    if signing_secret:
        verify_signature(body, headers, signing_secret)
    return claims


def __getattr__(name: str):
    """`eventing.verify.WebhookAuthentication`: the DRF class, imported only when asked for
    (services that receive webhooks without DRF never import it)."""
    if name in ("WebhookAuthentication", "WebhookSender"):
        from .api import receiving

        return getattr(receiving, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
