"""Fixtures of the API tests: clients with each kind of credential, users, tokens."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from tests.factories import EventTypeFactory
from triggers.models import EventType

QUEUE_URL = "/v1/api/default/eventing/queue"
EVENTS_URL = "/api/eventing/events/"
TRIGGERS_URL = "/api/eventing/triggers/"
TYPES_URL = "/api/eventing/event-types/"


def secret() -> str:
    """The first configured client secret (EVENTING["CLIENT_SECRETS"]: API tokens)."""
    return django_settings.EVENTING["CLIENT_SECRETS"][0]


def webhook_secret() -> str:
    """The first webhook signing secret (EVENTING["SECRETS"]), which receivers hold."""
    return django_settings.EVENTING["SECRETS"][0]


def make_token(
    claims: dict[str, Any] | None = None, *, key: str | None = None, ttl_s: int = 600
) -> str:
    """An HS256 JWT with `claims`, valid for `ttl_s` (negative: already expired)."""
    now = int(time.time())
    body = {"iat": now, "exp": now + ttl_s, **(claims or {})}
    return jwt.encode(body, key or secret(), algorithm="HS256")


def bearer(client: APIClient, token: str) -> APIClient:
    """`client` sending `Authorization: Bearer <token>`."""
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def grant(user: User, *codenames: str) -> User:
    """Give `user` the permissions `app_label.codename` and return it reloaded."""
    for perm in codenames:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def anon() -> APIClient:
    """A client without credentials."""
    return APIClient()


@pytest.fixture
def staff_user(db) -> User:
    """A staff user holding every model permission of eventing and triggers."""
    user = User.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["eventing", "triggers"])
    )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def plain_user(db) -> User:
    """An active user without staff status or permissions."""
    return User.objects.create_user("plain", password="pw-plain-123")


@pytest.fixture
def staff(staff_user) -> APIClient:
    """A client authenticated as the staff user (bearer JWT with `sub`)."""
    return bearer(APIClient(), make_token({"sub": staff_user.username}))


@pytest.fixture
def plain(plain_user) -> APIClient:
    """A client authenticated as the plain user."""
    return bearer(APIClient(), make_token({"sub": plain_user.username}))


@pytest.fixture
def open_type(db) -> EventType:
    """Custom type `order_placed` that anyone may queue."""
    return EventTypeFactory(name="order_placed", queue_rule=EventType.QueueRule.ALLOW)


@pytest.fixture(autouse=True)
def fresh_trigger_index():
    """Triggers of an earlier test were rolled back: don't let this process's index keep them."""
    from eventing.store import trigger_cache

    trigger_cache.invalidate()
    yield
    trigger_cache.invalidate()
