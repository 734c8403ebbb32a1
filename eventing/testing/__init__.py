"""Helpers for host projects' own tests: record what code emits, deliver to a fake receiver
through the real pipeline, build signed (or tampered) requests for receivers' tests.

Import it from tests only, once Django is set up (pytest-django and `manage.py test` do that
before importing test modules). pytest fixtures: `pytest_plugins = ["eventing.testing.pytest"]`.
"""

from eventing.testing.receiver import FakeReceiver, ReceivedRequest, Reply, fake_receiver
from eventing.testing.recorder import Emitted, EmittedEvents, capture_emits
from eventing.testing.signed import TAMPERINGS, SignedRequest, signed_request

__all__ = [
    "TAMPERINGS",
    "Emitted",
    "EmittedEvents",
    "FakeReceiver",
    "ReceivedRequest",
    "Reply",
    "SignedRequest",
    "capture_emits",
    "fake_receiver",
    "signed_request",
]
