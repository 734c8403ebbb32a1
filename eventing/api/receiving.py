"""For Django REST framework services that receive our webhooks: an authentication class.

    class OrderPlacedHook(APIView):
        authentication_classes = [WebhookAuthentication]
        permission_classes = [IsAuthenticated]

See docs/receiving.md for the whole example, secrets and signature checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from ..verify import WebhookVerificationError, verify_webhook


class WebhookSender:
    """The Eventing instance that sent a webhook (the `id` claim of its X-SC-Token)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims
        self.instance_id = str(claims.get("id", ""))

    def get_username(self) -> str:
        """`eventing:<instance id>`."""
        return f"eventing:{self.instance_id}"

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """A webhook sender holds no Django permissions."""
        return False

    def __str__(self) -> str:
        return self.get_username()


class WebhookAuthentication(authentication.BaseAuthentication):
    """Authenticates a webhook call by its X-SC-Token (any of `get_secrets()`).

    Set `signing_secret` (the trigger's `whsec_…`), or override `get_signing_secret()`, to also
    require a valid Standard Webhooks signature. `request.user` is a WebhookSender and
    `request.auth` the token's claims.
    """

    #: Secrets that may have signed the token; None reads EVENTING["SECRETS"].
    secrets: Sequence[str] | None = None
    #: The trigger's `whsec_…` secret; None skips the signature check.
    signing_secret: str | None = None

    def get_secrets(self, request: Request) -> Sequence[str] | None:
        """The token secrets (override to read them from elsewhere)."""
        return self.secrets

    def get_signing_secret(self, request: Request) -> str | None:
        """The signature secret for this request (override for one per trigger)."""
        return self.signing_secret

    def authenticate(self, request: Request):
        """(WebhookSender, claims); None without X-SC-Token; 401 if anything does not match."""
        header = request.META.get("HTTP_X_SC_TOKEN")
        if not header:
            return None
        signing_secret = self.get_signing_secret(request)
        # Reading the body here keeps it available to the parsers afterwards.
        body = request._request.body if signing_secret else b""
        try:
            claims = verify_webhook(
                body,
                request.headers,
                secrets=self.get_secrets(request),
                signing_secret=signing_secret,
            )
        except WebhookVerificationError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return WebhookSender(claims), claims

    def authenticate_header(self, request: Request) -> str:
        """Makes a missing token a 401."""
        return 'Bearer realm="eventing-webhook"'
