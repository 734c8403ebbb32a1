"""Who is calling: the X-SC-Token JWT and the Standard Webhooks signature.

The keys here (EVENTING["SECRETS"], or the private EVENTING["SIGNING_KEY"]) sign outgoing
webhooks only. Receivers hold the secrets (or the public key), so these keys never authenticate
an API caller; that is EVENTING["CLIENT_SECRETS"] / ["CLIENT_PUBLIC_KEYS"] (eventing.api.auth).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from functools import lru_cache
from typing import Any

import jwt
from django.core.exceptions import ImproperlyConfigured

from eventing.conf import settings

# Space Cloud's claims: receivers written for Space Cloud check `role == "SpaceCloud"`.
TOKEN_ROLE = "SpaceCloud"
# The role this project put in tokens before; eventing.webhooks.verify still accepts it.
LEGACY_TOKEN_ROLE = "eventing"
SECRET_PREFIX = "whsec_"
# The repository's development signing secret. A system check (eventing.E005) refuses it with
# DEBUG off: it is public, so anyone could sign webhooks (or, as a client secret, API tokens).
DEVELOPMENT_SIGNING_SECRET = "local-development-secret-change-me-0123456789"


def sc_token(now: float | None = None) -> str:
    """A fresh X-SC-Token: SIGNING_KEY's algorithm if set, else HS256 with SECRETS[0]."""
    now = int(now if now is not None else time.time())
    claims = {
        "id": settings.INSTANCE_ID,
        "role": TOKEN_ROLE,
        "iat": now,
        "exp": now + int(settings.TOKEN_TTL_S),
        "jti": uuid.uuid4().hex,
    }
    if settings.SIGNING_KEY:
        key, algorithm = private_signing_key(settings.SIGNING_KEY)
        return jwt.encode(claims, key, algorithm=algorithm)
    return jwt.encode(claims, signing_secret(), algorithm="HS256")


def signing_secret() -> str:
    """The secret that signs HS256 tokens (the first configured)."""
    secrets = settings.SECRETS
    if not secrets:
        raise ImproperlyConfigured(
            'EVENTING["SECRETS"] is empty and no EVENTING["SIGNING_KEY"] is set; nothing can '
            "sign webhooks."
        )
    return secrets[0]


def algorithm_for(key: Any) -> str:
    """The JWT algorithm of a private or public key: RS256, ES256/384/512 or EdDSA."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if key.curve.name not in by_curve:
            raise ImproperlyConfigured(f"Unsupported elliptic curve {key.curve.name}.")
        return by_curve[key.curve.name]
    if isinstance(
        key,
        (
            ed25519.Ed25519PrivateKey,
            ed25519.Ed25519PublicKey,
            ed448.Ed448PrivateKey,
            ed448.Ed448PublicKey,
        ),
    ):
        return "EdDSA"
    raise ImproperlyConfigured(
        f"Unsupported key type {type(key).__name__}: use an RSA, EC (P-256/384/521) or Ed25519 key."
    )


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:  # pragma: no cover - the standalone project installs it
        raise ImproperlyConfigured(
            "Asymmetric keys need the `cryptography` package (pip install 'eventing[crypto]')."
        ) from None


@lru_cache(maxsize=8)
def private_signing_key(pem: str) -> tuple[Any, str]:
    """(key, algorithm) of a PEM private key; ImproperlyConfigured when it is not one."""
    _require_cryptography()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            f'EVENTING["SIGNING_KEY"] is not an unencrypted PEM private key: {exc}'
        ) from None
    return key, algorithm_for(key)


@lru_cache(maxsize=32)
def public_key(pem: str) -> tuple[Any, str]:
    """(key, algorithm) of a PEM public key; ImproperlyConfigured when it is not one."""
    _require_cryptography()
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"Not a PEM public key: {exc}") from None
    return key, algorithm_for(key)


def signing_public_key_pem() -> str:
    """The PEM public key of EVENTING["SIGNING_KEY"], to hand to receivers ('' when unset)."""
    if not settings.SIGNING_KEY:
        return ""
    from cryptography.hazmat.primitives import serialization

    key, _ = private_signing_key(settings.SIGNING_KEY)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def secret_key_bytes(secret: str) -> bytes:
    """The raw key of a `whsec_…` secret (base64 after the prefix)."""
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw)


def webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` as Standard Webhooks defines it."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_signatures(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,` signature per secret, space-separated (Standard Webhooks): during a rotation's
    grace period the new and the old secret both sign, and a receiver holding either verifies."""
    return " ".join(webhook_signature(secret, msg_id, timestamp, body) for secret in secrets)
