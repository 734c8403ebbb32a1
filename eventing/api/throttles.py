"""Rate limits of the API (DRF throttles), configured by EVENTING["THROTTLE_RATES"]."""

from __future__ import annotations

from django.core.cache import caches
from rest_framework.throttling import SimpleRateThrottle

from eventing.conf import settings


class EventingThrottle(SimpleRateThrottle):
    """Per caller (user, token principal, or client IP) for the scope's rate; 429 over it."""

    scope = "eventing"

    @property
    def cache(self):
        """The cache EVENTING["THROTTLE_CACHE"] names, shared by every web process (DRF's
        default binds Django's default cache at import)."""
        return caches[settings.THROTTLE_CACHE]

    def get_rate(self) -> str | None:
        """Read the rate when used (DRF's own class binds its settings at import)."""
        return (settings.THROTTLE_RATES or {}).get(self.scope)

    def get_ident(self, request) -> str:
        """The client address: the connecting peer, or with EVENTING["NUM_PROXIES"] = n > 0
        the n-th address from the right of X-Forwarded-For (the one our last trusted proxy saw).

        DRF's own get_ident trusts the whole X-Forwarded-For when its NUM_PROXIES is unset, so
        a client rotating that header got a fresh bucket per request.
        """
        remote_addr = request.META.get("REMOTE_ADDR") or ""
        num_proxies = int(settings.NUM_PROXIES or 0)
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
        if num_proxies <= 0 or not forwarded:
            return remote_addr
        addresses = [part.strip() for part in forwarded.split(",")]
        return addresses[-min(num_proxies, len(addresses))] or remote_addr

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
