"""Event triggers for Django: database, file and custom events delivered to webhooks."""

from typing import Any

__all__ = ("emit",)


def emit(type: str, payload: Any, **kwargs: Any):
    """Queue an event; see `eventing.emit.emit` (imported lazily: apps may not be ready)."""
    from eventing.recording.emit import emit as _emit

    return _emit(type, payload, **kwargs)
