"""Who is calling: the X-SC-Token JWT and the Standard Webhooks signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

import jwt

from .conf import settings

TOKEN_ROLE = "eventing"
SECRET_PREFIX = "whsec_"


def sc_token(now: float | None = None) -> str:
    """A fresh HS256 JWT signed with the first of EVENTING["SECRETS"]."""
    now = int(now if now is not None else time.time())
    claims = {
        "id": settings.INSTANCE_ID,
        "role": TOKEN_ROLE,
        "iat": now,
        "exp": now + int(settings.TOKEN_TTL_S),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, signing_secret(), algorithm="HS256")


def signing_secret() -> str:
    """The secret that signs tokens (the first configured)."""
    secrets = settings.SECRETS
    if not secrets:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured('EVENTING["SECRETS"] is empty; nothing can sign webhooks.')
    return secrets[0]


def secret_key_bytes(secret: str) -> bytes:
    """The raw key of a `whsec_…` secret (base64 after the prefix)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw)


def webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` as Standard Webhooks defines it."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
