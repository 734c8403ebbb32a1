"""Portal sessions: a link is exchanged for a session of its own, scoped to the portal's path.

The session lives in the host's session engine under a cookie of its own (never the host's
session cookie), so opening a portal link neither logs anyone into the host site nor changes
its session, and the cookie is sent to the portal's URLs only.
"""

from __future__ import annotations

import time
from importlib import import_module
from typing import Any

from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from eventing.conf import settings

COOKIE = "eventing_portal"
OWNER_KEY = "eventing_portal_owner"


def session_store(key: str | None = None) -> SessionBase:
    """A session of the host's SESSION_ENGINE (database by default)."""
    return import_module(django_settings.SESSION_ENGINE).SessionStore(key)


def portal_root() -> str:
    """The path the portal is mounted at (the cookie's path)."""
    return reverse("eventing_portal:home")


def start_session(request: HttpRequest, response: HttpResponse, label: str, pk: str) -> None:
    """Open a portal session for the owner (`label`, `pk`) and set its cookie on `response`;
    an earlier portal session of this browser is ended."""
    end_session(request, response)
    store = session_store()
    # The end is kept in the session too: not every engine enforces set_expiry() on load (the
    # signed-cookies engine checks SESSION_COOKIE_AGE only).
    store[OWNER_KEY] = [label, pk, time.time() + settings.PORTAL_SESSION_MAX_AGE_S]
    store.set_expiry(int(settings.PORTAL_SESSION_MAX_AGE_S))
    store.save()
    samesite = settings.PORTAL_COOKIE_SAMESITE
    response.set_cookie(
        COOKIE,
        store.session_key,
        max_age=int(settings.PORTAL_SESSION_MAX_AGE_S),
        path=portal_root(),
        httponly=True,
        # Browsers drop a SameSite=None cookie that is not Secure.
        secure=request.is_secure() or samesite == "None",
        samesite=samesite,
    )


def session_owner(request: HttpRequest) -> tuple[str, str] | None:
    """The (model label, pk) of the owner whose portal session this request carries, if any."""
    key = request.COOKIES.get(COOKIE)
    if not key:
        return None
    value: Any = session_store(key).get(OWNER_KEY)
    if not (isinstance(value, list) and len(value) == 3) or value[2] <= time.time():
        return None
    return value[0], value[1]


def end_session(request: HttpRequest, response: HttpResponse) -> None:
    """Delete this browser's portal session, if any, and its cookie."""
    key = request.COOKIES.get(COOKIE)
    if key:
        session_store(key).delete(key)
        response.delete_cookie(COOKIE, path=portal_root())
