"""Owners: the model subscriptions belong to, and who owns a request.

An owner is stored on a subscription as its model label and primary key (text), not as a
foreign key: the event tables may live in another database than the owner's table
(EVENTING["DATABASE"]), and EVENTING["OWNER_MODEL"] is a setting, not a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

from eventing.conf import settings

DEFAULT_RESOLVER = "eventing.owners.request_user"


@dataclass(frozen=True)
class OwnerKey:
    """How a subscription names its owner: model label and primary key as text."""

    model: str
    pk: str

    def filter(self) -> dict[str, str]:
        """Keyword arguments selecting this owner's subscriptions."""
        return {"owner_model": self.model, "owner_id": self.pk}


def owner_model_label() -> str:
    """EVENTING["OWNER_MODEL"], or AUTH_USER_MODEL when it is unset."""
    return settings.OWNER_MODEL or django_settings.AUTH_USER_MODEL


def owner_model() -> type[models.Model]:
    """The owner model class; ImproperlyConfigured when the label names no installed model."""
    label = owner_model_label()
    try:
        return apps.get_model(label, require_ready=False)
    except (LookupError, ValueError):
        raise ImproperlyConfigured(
            f'EVENTING["OWNER_MODEL"] is {label!r}, which is not an installed model.'
        ) from None


def owner_key(owner: Any) -> OwnerKey:
    """The key of an owner instance; TypeError when it is not an instance of the owner model."""
    model = owner_model()
    if not isinstance(owner, model) or owner.pk is None:
        raise TypeError(
            f"owner must be a saved {model._meta.label} (EVENTING['OWNER_MODEL']), not {owner!r}."
        )
    return OwnerKey(model._meta.label, str(owner.pk))


def owners_by_key(keys: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Owner instances for (model label, pk) pairs, one query per model; missing ones left out."""
    found: dict[tuple[str, str], Any] = {}
    by_model: dict[str, set[str]] = {}
    for label, pk in keys:
        by_model.setdefault(label, set()).add(pk)
    for label, pks in by_model.items():
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            continue
        for obj in model._default_manager.filter(pk__in=pks):
            found[(label, str(obj.pk))] = obj
    return found


def request_user(request) -> Any:
    """The default resolver: the request's authenticated user, else None."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return user


def resolve_owner(request) -> Any:
    """The owner acting in `request` (EVENTING["OWNER_RESOLVER"]), or None."""
    resolver = import_string(settings.OWNER_RESOLVER)
    owner = resolver(request)
    if owner is not None and not isinstance(owner, owner_model()):
        # A resolver that answers with the wrong model would let views compare keys of
        # different models; refuse loudly instead of granting or denying by accident.
        raise ImproperlyConfigured(
            f'EVENTING["OWNER_RESOLVER"] ({settings.OWNER_RESOLVER}) returned {owner!r}, '
            f'not a {owner_model_label()} (EVENTING["OWNER_MODEL"]) or None.'
        )
    return owner
