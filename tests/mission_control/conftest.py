"""Fixtures of the Mission Control tests: an admin user and a logged-in client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_health_cache():
    """Health probes are cached; each test starts without them."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_user(db) -> User:
    """A superuser."""
    return User.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")


@pytest.fixture
def admin_client(client, admin_user):
    """A test client logged in as the superuser."""
    client.force_login(admin_user)
    return client
