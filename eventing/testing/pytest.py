"""pytest fixtures of eventing.testing; a host project enables them in its conftest.py with
`pytest_plugins = ["eventing.testing.pytest"]` (pytest-django must have set Django up)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eventing.testing.receiver import FakeReceiver, fake_receiver
from eventing.testing.recorder import EmittedEvents, capture_emits


@pytest.fixture
def emitted_events() -> Iterator[EmittedEvents]:
    """Every event the test emits (no broker needed), with assert_emitted / assert_not_emitted."""
    with capture_emits() as events:
        yield events


@pytest.fixture
def webhook_receiver() -> Iterator[FakeReceiver]:
    """A fake receiver answering 200 to every webhook the test sends; rows are delivered on
    commit (`django_capture_on_commit_callbacks(execute=True)` inside a test transaction) or
    by `webhook_receiver.flush()`."""
    with fake_receiver() as receiver:
        yield receiver
