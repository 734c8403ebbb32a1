"""Public import path of the receiving side's helpers: `from eventing.verify import …`."""

from eventing.webhooks.verify import (
    WebhookVerificationError,
    verify_sc_token,
    verify_signature,
    verify_webhook,
)

__all__ = [
    "WebhookVerificationError",
    "verify_sc_token",
    "verify_signature",
    "verify_webhook",
]


def __getattr__(name: str):
    """The DRF classes, imported only when asked for (an optional dependency: services that
    receive webhooks without DRF never import it)."""
    if name in ("WebhookAuthentication", "WebhookSender"):
        from eventing.api import receiving

        return getattr(receiving, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
