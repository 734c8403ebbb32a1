"""Who is using the portal: the owner of a link's portal session, else the host's login."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_protect

from eventing.owners import OwnerKey, owner_key, owner_model, resolve_owner
from eventing.portal.headers import protect
from eventing.portal.sessions import session_owner


@dataclass(frozen=True)
class PortalOwner:
    """The owner a portal request acts for, and whether a link's session brought it."""

    key: OwnerKey
    obj: Any
    by_link: bool

    @property
    def name(self) -> str:
        return str(self.obj)


def link_owner(label: str, pk: str) -> Any:
    """The owner instance a link or portal session names, or None (gone, or of another model
    than EVENTING["OWNER_MODEL"] since the link was made)."""
    model = owner_model()
    if label != model._meta.label:
        return None
    try:
        return model._default_manager.filter(pk=pk).first()
    except (ValueError, TypeError):
        return None


def current_owner(request: HttpRequest) -> PortalOwner | None:
    """A link's portal session wins (it names its owner explicitly); else the owner the host's
    resolver (EVENTING["OWNER_RESOLVER"]) finds for the logged-in request."""
    found = session_owner(request)
    if found is not None:
        obj = link_owner(*found)
        if obj is not None:
            return PortalOwner(owner_key(obj), obj, by_link=True)
    obj = resolve_owner(request)
    if obj is None:
        return None
    return PortalOwner(owner_key(obj), obj, by_link=False)


def refused(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    """The page that says why the portal is not open to this browser."""
    return protect(
        render(request, "eventing/portal/refused.html", {"reason": reason}, status=status)
    )


def portal_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A portal page: CSRF-checked on POST (whatever the host's middleware), for an owner only,
    with the portal's headers; `request.portal_owner` is the owner it acts for."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        owner = current_owner(request)
        if owner is None:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                return refused(request, "This account has no webhooks portal.", 403)
            return protect(redirect_to_login(request.get_full_path()))
        request.portal_owner = owner
        return protect(view(request, *args, **kwargs))

    return csrf_protect(wrapped)
