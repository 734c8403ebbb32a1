"""Rate limits of the API (DRF throttles), configured by EVENTING["THROTTLE_RATES"]."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from ..conf import settings


class EventingThrottle(SimpleRateThrottle):
    """Per caller (user, token principal, or client IP) for the scope's rate; 429 over it."""

    scope = "eventing"

    def get_rate(self) -> str | None:
        """Read the rate when used (DRF's own class binds its settings at import)."""
        return (settings.THROTTLE_RATES or {}).get(self.scope)

    def get_cache_key(self, request, view) -> str:
        """One bucket per user, per service principal, or per client address."""
        user = request.user
        if user is not None and user.is_authenticated:
            ident = f"user:{user.pk}" if user.pk is not None else user.get_username()
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class QueueThrottle(EventingThrottle):
    """Queueing events (the Space Cloud endpoint and POST /api/eventing/events/)."""

    scope = "eventing_queue"
