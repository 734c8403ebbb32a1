"""For services that receive our webhooks: check the X-SC-Token and the signature.

`verify_webhook` checks both and refuses to pass a body it cannot bind to the token: the token
alone says who sent *a* request, not what it carried, so without the trigger's `whsec_` secret
it fails unless the caller opts in with `token_only=True`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from django.core.exceptions import ImproperlyConfigured, PermissionDenied

from eventing.conf import settings
from eventing.webhooks.signing import (
    LEGACY_TOKEN_ROLE,
    TOKEN_ROLE,
    public_key,
    secret_key_bytes,
    signing_public_key_pem,
)

# How far a webhook-timestamp may be from our clock (Standard Webhooks uses 5 minutes).
TIMESTAMP_TOLERANCE_S = 5 * 60
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256", "ES384", "ES512", "EdDSA")
ACCEPTED_ROLES = (TOKEN_ROLE, LEGACY_TOKEN_ROLE)


class WebhookVerificationError(PermissionDenied):
    """The request did not come from us, or was altered or replayed."""


def default_keys() -> tuple[list[str], list[str]]:
    """(secrets, public keys) of this project: EVENTING["SECRETS"] and SIGNING_KEY's public key."""
    return list(settings.SECRETS or []), [pem for pem in [signing_public_key_pem()] if pem]


def _keys_for(algorithm: str, secrets: Sequence[str], public_keys: Sequence[Any]) -> list[Any]:
    """The keys that may have signed a token of `algorithm` (none for an algorithm we never use)."""
    if algorithm == "HS256":
        return [s for s in secrets if s]
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        return []
    keys = []
    for key in public_keys:
        if isinstance(key, str):
            try:
                key, key_algorithm = public_key(key)
            except ImproperlyConfigured as exc:
                raise WebhookVerificationError(
                    f"A configured public key is unusable: {exc}"
                ) from None
            if key_algorithm != algorithm:
                continue
        keys.append(key)
    return keys


def verify_sc_token(
    header_value: str,
    secrets: Sequence[str] | None = None,
    *,
    public_keys: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Return the claims of an `X-SC-Token` (with or without "Bearer "), checked against any
    of `secrets` (HS256) or `public_keys` (PEM strings or key objects; RS256/ES256/EdDSA);
    raise WebhookVerificationError otherwise. Given neither, this project's keys are used:
    EVENTING["SECRETS"] and the public half of EVENTING["SIGNING_KEY"]."""
    if secrets is None and public_keys is None:
        secrets, public_keys = default_keys()
    # A lone string is one key, not a list of one-character secrets.
    secrets = [secrets] if isinstance(secrets, str) else list(secrets or [])
    public_keys = [public_keys] if isinstance(public_keys, str) else list(public_keys or [])
    token = (header_value or "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        raise WebhookVerificationError("Missing X-SC-Token.")
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        raise WebhookVerificationError(f"Invalid X-SC-Token: {exc}") from None
    keys = _keys_for(algorithm, secrets, public_keys)
    if not keys:
        raise WebhookVerificationError(
            f"Invalid X-SC-Token: no accepted key for algorithm {algorithm!r}."
        )
    last_error: Exception | None = None
    for key in keys:
        try:
            claims = jwt.decode(
                token, key, algorithms=[algorithm], options={"require": ["exp", "iat", "id"]}
            )
        except jwt.InvalidSignatureError as exc:
            last_error = exc
            continue
        except jwt.PyJWTError as exc:
            raise WebhookVerificationError(f"Invalid X-SC-Token: {exc}") from exc
        if claims.get("role") not in ACCEPTED_ROLES:
            raise WebhookVerificationError("X-SC-Token has the wrong role.")
        return claims
    raise WebhookVerificationError(f"Invalid X-SC-Token: {last_error}")


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
    public_keys: Sequence[Any] | None = None,
    signing_secret: str | None = None,
    token_only: bool = False,
) -> dict[str, Any]:
    """Check a whole webhook request: its X-SC-Token and the `webhook-signature` of `body` with
    the trigger's `whsec_` secret. Returns the token's claims; raises WebhookVerificationError.

    Without `signing_secret` the body cannot be bound to the token (anyone who saw one token
    could send any body with it), so the request is refused unless `token_only=True` says the
    caller accepts that.
    """
    claims = verify_sc_token(_header(headers, "x-sc-token"), secrets, public_keys=public_keys)
    if signing_secret:
        verify_signature(body, headers, signing_secret)
    elif not token_only:
        raise WebhookVerificationError(
            "No signing secret to check the body with: pass the trigger's whsec_ secret as "
            "signing_secret (or token_only=True to accept any body with a valid X-SC-Token)."
        )
    return claims
