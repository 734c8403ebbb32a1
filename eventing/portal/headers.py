"""The portal's response headers: who may frame it, what its pages may load, no caching."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.cache import add_never_cache_headers

from eventing.conf import settings


def frame_ancestors() -> str:
    """The CSP frame-ancestors sources of EVENTING["PORTAL_FRAME_ANCESTORS"] ('none' if empty)."""
    return " ".join(settings.PORTAL_FRAME_ANCESTORS) or "'none'"


def protect(response: HttpResponse) -> HttpResponse:
    """Set the portal's security headers on `response`.

    Framing is the host's choice (PORTAL_FRAME_ANCESTORS, default same origin): CSP
    frame-ancestors says it, and X-Frame-Options, which cannot name other sites, is set only
    where it agrees (browsers that know CSP ignore it when frame-ancestors is present).
    """
    ancestors = frame_ancestors()
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        f"base-uri 'none'; frame-ancestors {ancestors}"
    )
    if ancestors == "'self'":
        response["X-Frame-Options"] = "SAMEORIGIN"
    elif ancestors == "'none'":
        response["X-Frame-Options"] = "DENY"
    # Django's XFrameOptionsMiddleware leaves a response alone when this is set.
    response.xframe_options_exempt = True
    # Pages show secrets and delivery bodies: nothing is kept by the browser or a proxy, and
    # no URL of the portal is sent to another site. Not "no-referrer": Chromium then sends
    # `Origin: null` with the portal's own forms, and Django's CSRF check refuses them.
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "same-origin"
    response["X-Content-Type-Options"] = "nosniff"
    return response
