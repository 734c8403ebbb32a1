"""API authentication: `Authorization: Bearer <JWT>` verified with the *client* keys.

Client tokens are verified with EVENTING["CLIENT_SECRETS"] (HS256/384/512),
EVENTING["CLIENT_PUBLIC_KEYS"] (PEM keys, RS256/ES256/ES384/ES512/EdDSA) or the keys published at
EVENTING["CLIENT_JWKS_URLS"] (eventing.api.jwks), never with EVENTING["SECRETS"]: those sign
webhooks and every receiver holds them.

A verified token acts as its `sub`:

* `sub` names an active Django user: the request runs as that user, with exactly their
  permissions (the model permissions Mission Control applies).
* Otherwise (no `sub`, or one naming no active user, as Space Cloud apps' end-user tokens do)
  the caller is a TokenPrincipal: authenticated for the `authenticated` queue rule, holding no
  permission at all. Claims such as `role: "admin"` or `perms` grant nothing.
* A webhook's own `X-SC-Token` (role `SpaceCloud` or `eventing`, no `sub`) is refused even if
  it verifies.

`exp` is honoured when present (an expired token is a 401).
"""

from __future__ import annotations

from typing import Any

import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from eventing.api import jwks
from eventing.api.principals import TokenCaller
from eventing.conf import settings
from eventing.recording.rules import queue_rule_for
from eventing.webhooks.signing import LEGACY_TOKEN_ROLE, TOKEN_ROLE, public_key
from triggers.models import EventType

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256", "ES384", "ES512", "EdDSA")
WEBHOOK_ROLES = (TOKEN_ROLE, LEGACY_TOKEN_ROLE)


class TokenPrincipal(TokenCaller):
    """A caller known only by a verified API token: authenticated, without any permission."""

    def __init__(self, claims: dict[str, Any]) -> None:
        super().__init__(claims)
        self.name = str(
            claims.get("sub") or claims.get("id") or claims.get("iss") or claims.get("jti") or "-"
        )

    def get_username(self) -> str:
        """How logs and throttles name this caller."""
        return f"jwt:{self.name}"


class UnverifiedCaller(AnonymousUser):
    """An anonymous caller whose credentials failed: `allow` queue rules ignore them, the rest
    answer 401 with `credentials_error` (why they failed)."""

    def __init__(self, error: exceptions.AuthenticationFailed) -> None:
        super().__init__()
        self.credentials_error = error


def client_keys(algorithm: str) -> list[Any]:
    """The configured client keys that may verify a token signed with `algorithm`."""
    if algorithm in HMAC_ALGORITHMS:
        return [secret for secret in settings.CLIENT_SECRETS or [] if secret]
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        return []
    keys = []
    for pem in settings.CLIENT_PUBLIC_KEYS or []:
        if pem in jwks.jwks_urls():
            continue  # a JWKS URL, fetched by jwks.signing_keys
        try:
            key, key_algorithm = public_key(pem)
        except ImproperlyConfigured:
            continue  # reported by the system check eventing.E006
        if key_algorithm == algorithm:
            keys.append(key)
    return keys


def signed_with_webhook_secret(token: str) -> bool:
    """Whether `token` verifies with a webhook signing secret (to say so in the 401)."""
    for secret in settings.SECRETS or []:
        try:
            jwt.decode(
                token, secret, algorithms=list(HMAC_ALGORITHMS), options={"verify_exp": False}
            )
        except jwt.PyJWTError:
            continue
        return True
    return False


def decode_api_token(token: str) -> dict[str, Any]:
    """The claims of a bearer token verified with a client key; 401 naming why otherwise."""
    if not (settings.CLIENT_SECRETS or settings.CLIENT_PUBLIC_KEYS or settings.CLIENT_JWKS_URLS):
        raise exceptions.AuthenticationFailed(
            "Bearer JWTs are not accepted here: EVENTING['CLIENT_SECRETS'], "
            "EVENTING['CLIENT_PUBLIC_KEYS'] and EVENTING['CLIENT_JWKS_URLS'] are empty. Use a "
            "DRF token or a session, or configure client keys."
        )
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        raise exceptions.AuthenticationFailed(f"Invalid bearer token: {exc}") from None
    keys = client_keys(algorithm)
    if algorithm in ASYMMETRIC_ALGORITHMS:
        try:
            keys += jwks.signing_keys(token, algorithm)
        except jwks.JWKSUnavailable:
            if not keys:
                raise exceptions.AuthenticationFailed(
                    "The client keys could not be fetched from EVENTING['CLIENT_JWKS_URLS'] "
                    "(the server log says why); try again later."
                ) from None
    if not keys:
        raise exceptions.AuthenticationFailed(
            f"The bearer token's algorithm {algorithm!r} (kid "
            f"{jwt.get_unverified_header(token).get('kid')!r}) matches no configured client "
            "key (EVENTING['CLIENT_SECRETS'] for HS256/384/512, EVENTING['CLIENT_PUBLIC_KEYS'] "
            "or a key at EVENTING['CLIENT_JWKS_URLS'] for RS256/ES256/EdDSA)."
        )
    for key in keys:
        try:
            return jwt.decode(token, key, algorithms=[algorithm], options={"verify_aud": False})
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise exceptions.AuthenticationFailed("The bearer token has expired.") from None
        except jwt.PyJWTError as exc:
            raise exceptions.AuthenticationFailed(f"Invalid bearer token: {exc}") from None
    if algorithm in HMAC_ALGORITHMS and signed_with_webhook_secret(token):
        raise exceptions.AuthenticationFailed(
            "The bearer token is signed with a webhook signing secret (EVENTING['SECRETS']); "
            "those never authenticate API callers. Sign client tokens with a client key."
        )
    raise exceptions.AuthenticationFailed(
        "The bearer token's signature matches none of the client keys "
        "(EVENTING['CLIENT_SECRETS'] / ['CLIENT_PUBLIC_KEYS'] / ['CLIENT_JWKS_URLS'])."
    )


def principal_for(claims: dict[str, Any]):
    """The active user named by `sub`, else a TokenPrincipal (authenticated, no permissions);
    401 for a webhook delivery token."""
    if claims.get("role") in WEBHOOK_ROLES and "sub" not in claims:
        # An X-SC-Token: only a misconfiguration (a client secret equal to a signing secret,
        # warned by eventing.W005) lets it verify here; a receiver must not replay it.
        raise exceptions.AuthenticationFailed("Webhook delivery tokens are not API credentials.")
    subject = claims.get("sub")
    if subject is not None:
        user_model = get_user_model()
        user = user_model._default_manager.filter(
            **{user_model.USERNAME_FIELD: str(subject)}, is_active=True
        ).first()
        if user is not None:
            return user
    return TokenPrincipal(claims)


class EventingJWTAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <jwt>` verified with EVENTING["CLIENT_SECRETS"] /
    ["CLIENT_PUBLIC_KEYS"] / ["CLIENT_JWKS_URLS"]."""

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


class QueueAuthenticationMixin:
    """For queueing views: bad credentials do not stop a request at once.

    Queue rules decide: an `allow` type never looks at the token, so an empty or unverifiable
    one is ignored there; any other rule answers the credentials' 401 (eventing.api.permissions).
    """

    def queues_events(self) -> bool:
        """Whether this request queues events (a view serving more than queueing overrides it)."""
        return True

    def perform_authentication(self, request: Request) -> None:
        """Authenticate now, keeping a failure on an UnverifiedCaller instead of raising; for
        a request whose every type is `allow`, not at all (no key is fetched, none checked)."""
        if not self.queues_events():
            super().perform_authentication(request)
            return
        if only_open_types(request.data):
            request.user = AnonymousUser()
            request.auth = None
            return
        try:
            request.user  # noqa: B018 - runs the authenticators
        except exceptions.AuthenticationFailed as exc:
            request.user = UnverifiedCaller(exc)
            request.auth = None


def only_open_types(data: Any) -> bool:
    """Whether the body (one event object or a list of them) names only `allow` types: then
    the credentials are never looked at, so a slow key endpoint cannot hold the request."""
    events = data if isinstance(data, list) else [data]
    if not events or not all(isinstance(event, dict) for event in events):
        return False
    wanted = {event.get("type") for event in events}
    if not all(isinstance(event_type, str) for event_type in wanted):
        return False
    rules: dict = {}
    for event_type in wanted:
        rule_row = queue_rule_for(event_type, rules)
        if rule_row is None or rule_row.queue_rule != EventType.QueueRule.ALLOW:
            return False
    return True


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
