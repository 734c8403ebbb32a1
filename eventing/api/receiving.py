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

from eventing.api.principals import TokenCaller
from eventing.webhooks.verify import WebhookVerificationError, verify_webhook


class WebhookSender(TokenCaller):
    """The Eventing instance that sent a webhook (the `id` claim of its X-SC-Token); it holds
    no Django permission."""

    def __init__(self, claims: dict[str, Any]) -> None:
        super().__init__(claims)
        self.instance_id = str(claims.get("id", ""))

    def get_username(self) -> str:
        """`eventing:<instance id>`."""
        return f"eventing:{self.instance_id}"


class WebhookAuthentication(authentication.BaseAuthentication):
    """Authenticates a webhook call by its X-SC-Token and the `webhook-signature` of its body.

    Set `signing_secret` (the trigger's `whsec_…`), or override `get_signing_secret()`; without
    one every request is refused, because the token alone does not bind the body. Set
    `token_only = True` to accept any body with a valid token anyway. `request.user` is a
    WebhookSender and `request.auth` the token's claims.
    """

    #: HS256 secrets that may have signed the token; None (with `public_keys` None too) reads
    #: this project's EVENTING["SECRETS"] and the public half of its SIGNING_KEY.
    secrets: Sequence[str] | None = None
    #: PEM public keys of senders signing with RS256/ES256/EdDSA (EVENTING["SIGNING_KEY"]).
    public_keys: Sequence[str] | None = None
    #: The trigger's `whsec_…` secret.
    signing_secret: str | None = None
    #: True accepts a request whose body is not signed (only the token is checked).
    token_only: bool = False

    def get_secrets(self, request: Request) -> Sequence[str] | None:
        """The token secrets (override to read them from elsewhere)."""
        return self.secrets

    def get_public_keys(self, request: Request) -> Sequence[str] | None:
        """The token public keys (override to read them from elsewhere)."""
        return self.public_keys

    def get_signing_secret(self, request: Request) -> str | None:
        """The signature secret for this request (override for one per trigger)."""
        return self.signing_secret

    def authenticate(self, request: Request):
        """(WebhookSender, claims); None without X-SC-Token; 401 if anything does not match."""
        header = request.META.get("HTTP_X_SC_TOKEN")
        if not header:
            return None
        # Reading the body here keeps it available to the parsers afterwards.
        body = request._request.body
        try:
            claims = verify_webhook(
                body,
                request.headers,
                secrets=self.get_secrets(request),
                public_keys=self.get_public_keys(request),
                signing_secret=self.get_signing_secret(request),
                token_only=self.token_only,
            )
        except WebhookVerificationError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return WebhookSender(claims), claims

    def authenticate_header(self, request: Request) -> str:
        """Makes a missing token a 401."""
        return 'Bearer realm="eventing-webhook"'
