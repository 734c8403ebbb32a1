"""Fixtures of the Mission Control tests (pytest-django provides admin_client)."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The 24 h chart is cached; each test starts without it."""
    cache.clear()
    yield
    cache.clear()
