"""API authentication: `Authorization: Bearer <JWT>` signed with any of EVENTING["SECRETS"].

Claims map to a caller this way:

* `sub` names the username of an active Django user: the request runs as that user, with
  exactly their permissions (staff, groups, model permissions).
* Without `sub`, the token is a service principal. Its `role` claim `"admin"` grants every
  permission; otherwise it holds only the permissions listed in a `perms` claim (e.g.
  `["eventing.queue_event"]`) and counts as authenticated for the `authenticated` queue rule.

`exp` is honoured when present (an expired token is a 401). Tokens with `role: "eventing"` are
the X-SC-Token we send to webhooks; they are refused here, so a receiver cannot reuse one.
"""

from __future__ import annotations

from typing import Any

import jwt
from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from ..conf import settings
from ..signing import TOKEN_ROLE

ALGORITHMS = ["HS256", "HS384", "HS512"]
ADMIN_ROLE = "admin"


class ServicePrincipal:
    """A caller known only by a signed token (no Django user behind it)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None
    id = None

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.role = str(claims.get("role") or "")
        self.name = str(claims.get("id") or claims.get("iss") or self.role or "service")
        perms = claims.get("perms")
        self.perms = (
            frozenset(p for p in perms if isinstance(p, str))
            if isinstance(perms, list)
            else frozenset()
        )

    @property
    def is_staff(self) -> bool:
        """Admin-role tokens may manage everything."""
        return self.role == ADMIN_ROLE

    is_superuser = is_staff

    def get_username(self) -> str:
        """How logs and throttles name this caller."""
        return f"jwt:{self.name}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Admin role: every permission; else those in the `perms` claim."""
        return self.is_superuser or perm in self.perms

    def has_perms(self, perm_list, obj: Any = None) -> bool:
        """Whether it has every permission of `perm_list`."""
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        """Whether it has any permission in `app_label`."""
        return self.is_superuser or any(p.startswith(f"{app_label}.") for p in self.perms)

    def __str__(self) -> str:
        return self.get_username()


def decode_api_token(token: str) -> dict[str, Any]:
    """The claims of a bearer token verified with any configured secret; 401 otherwise."""
    secrets = list(settings.SECRETS)
    if not secrets:
        raise exceptions.AuthenticationFailed("No EVENTING['SECRETS'] are configured.")
    for secret in secrets:
        try:
            return jwt.decode(token, secret, algorithms=ALGORITHMS, options={"verify_aud": False})
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise exceptions.AuthenticationFailed("The bearer token has expired.") from None
        except jwt.PyJWTError as exc:
            raise exceptions.AuthenticationFailed(f"Invalid bearer token: {exc}") from None
    raise exceptions.AuthenticationFailed(
        "The bearer token's signature matches none of EVENTING['SECRETS']."
    )


def principal_for(claims: dict[str, Any]):
    """The user (`sub`) or service principal a verified token stands for."""
    if claims.get("role") == TOKEN_ROLE and "sub" not in claims:
        raise exceptions.AuthenticationFailed(
            "Webhook delivery tokens (role 'eventing') are not API credentials."
        )
    subject = claims.get("sub")
    if subject is None:
        return ServicePrincipal(claims)
    user_model = get_user_model()
    user = user_model._default_manager.filter(
        **{user_model.USERNAME_FIELD: str(subject)}, is_active=True
    ).first()
    if user is None:
        raise exceptions.AuthenticationFailed(f"The token's subject {subject!r} is no active user.")
    return user


class EventingJWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <jwt>` (HS256/384/512) signed with any of EVENTING["SECRETS"]."""

    keyword = "Bearer"

    def authenticate(self, request: Request):
        """(user or principal, claims), None without a Bearer header, 401 for a bad token."""
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <token>'.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The bearer token is not ASCII.") from None
        claims = decode_api_token(token)
        return principal_for(claims), claims

    def authenticate_header(self, request: Request) -> str:
        """Makes unauthenticated requests 401 (not 403) with a WWW-Authenticate header."""
        return f'{self.keyword} realm="eventing"'


def authentication_classes() -> list[type]:
    """The API's authenticators: JWT first so a missing credential answers 401."""
    return [
        EventingJWTAuthentication,
        authentication.TokenAuthentication,
        authentication.SessionAuthentication,
    ]


try:
    from drf_spectacular.extensions import OpenApiAuthenticationExtension

    class EventingJWTScheme(OpenApiAuthenticationExtension):
        """Documents the bearer JWT in the OpenAPI schema."""

        target_class = EventingJWTAuthentication
        name = "bearerJWT"

        def get_security_definition(self, auto_schema):
            """HTTP bearer with a JWT."""
            return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}

except ImportError:  # pragma: no cover - drf-spectacular is optional for host projects
    pass
