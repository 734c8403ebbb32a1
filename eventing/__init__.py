"""Event triggers for Django: database, file and custom events delivered to webhooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventing.capture.actor import actor
    from eventing.portal.links import portal_url
    from eventing.recording.emit import emit

__version__ = "0.2.0"  # pyproject.toml's version says the same (a test holds them together)

__all__ = ("__version__", "actor", "emit", "portal_url")


def __getattr__(name: str):
    """`eventing.emit` is `eventing.recording.emit.emit`, imported on first use: this package is
    imported before Django's apps are ready, that module needs them."""
    if name == "emit":
        from eventing.recording.emit import emit

        return emit
    if name == "actor":
        from eventing.capture.actor import actor

        return actor
    if name == "portal_url":
        from eventing.portal.links import portal_url

        return portal_url
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
