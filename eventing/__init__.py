"""Event triggers for Django: database, file and custom events delivered to webhooks."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventing.models import EventLog

__all__ = ("emit",)


def emit(
    type: str,
    payload: Any,
    *,
    deliver_at: dt.datetime | None = None,
    delay_s: float | None = None,
    source: str | None = None,
    idempotency_key: str | None = None,
) -> list[EventLog]:
    """Queue an event for every matching trigger; see `eventing.recording.emit.emit`.

    Imported when called: this package is imported before Django's apps are ready.
    """
    from eventing.recording.emit import emit as _emit

    return _emit(
        type,
        payload,
        deliver_at=deliver_at,
        delay_s=delay_s,
        source=source,
        idempotency_key=idempotency_key,
    )
