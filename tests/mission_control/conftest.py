"""Fixtures of the Mission Control tests (pytest-django provides admin_client)."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Health probes and the 24 h chart are cached; each test starts without them."""
    cache.clear()
    yield
    cache.clear()
