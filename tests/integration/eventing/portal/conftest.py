"""Fixtures of the portal tests: a catalog, two owners, a client holding a portal session."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from eventing import portal_url
from eventing.models import PublicEventType


@pytest.fixture
def catalog(db):
    """Two public types and a private one."""
    PublicEventType.objects.create(
        name="invoice_paid",
        description="An invoice was paid.",
        example={"invoice": 7, "amount": "12.50"},
        schema={"type": "object", "required": ["invoice"]},
    )
    PublicEventType.objects.create(name="invoice_voided", description="An invoice was voided.")
    PublicEventType.objects.create(name="internal_audit", public=False)


@pytest.fixture
def owners(db):
    users = get_user_model().objects
    return users.create_user("alice"), users.create_user("bob")


def portal_client(owner) -> Client:
    """A browser that opened `owner`'s portal link (and is logged in nowhere else)."""
    client = Client()
    response = client.get(portal_url(owner))
    assert response.status_code == 302, response.content
    return client
