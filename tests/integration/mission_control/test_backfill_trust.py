"""Backfill's "Count rows" is no oracle: filters take the model's own fields by equality or
range, never a sensitive one nor a relation, for users who may view the model's rows; errors
name what was given, not the model's fields; malformed requests are 400s naming the field."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from tests.factories import TriggerFactory
from tests.testapp.models import Customer, Order

pytestmark = pytest.mark.django_db

COUNT = "/mission-control/backfill/count/"
BATCH = "/mission-control/backfill/batch/"


def post(client, url: str, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def users_trigger():
    return TriggerFactory(name="users_sync", type="DB_UPDATE", source="auth.User")


@pytest.mark.parametrize(
    "line",
    [
        "auth_token__key__startswith=a",
        "password__startswith=pbkdf2",
        "password=x",
        "username__startswith=ad",
        "username__regex=^a",
        "groups__name=ops",
        "user_permissions__codename__in=a,b",
        "nope=1",
    ],
)
def test_count_refuses_sensitive_related_and_pattern_filters(client, users_trigger, line):
    """Attack: a user with change_trigger extracted the admin's DRF token in 378 counts with
    `auth_token__key__startswith=`, read password hashes the same way, and the errors listed
    every field and relation of the model."""
    admin = User.objects.create_superuser("root", password="pw-root-123")
    Token.objects.create(user=admin)
    client.force_login(staff("change_trigger", "view_user"))

    response = post(client, COUNT, {"trigger": "users_sync", "filters": line})

    assert response.status_code == 400
    error = response.json()["error"]
    assert line.partition("=")[0] in error
    assert "Choices" not in error
    assert "last_login" not in error
    assert "date_joined" not in error


def test_count_takes_own_fields_by_equality_and_range(client, users_trigger):
    User.objects.create_user("ada", password="pw-ada-123")
    client.force_login(staff("change_trigger", "view_user"))
    first = User.objects.order_by("pk").first().pk

    for line, count in [
        ("username=ada", 1),
        ("is_staff=True", 1),
        (f"pk__in={first}", 1),
        (f"id__range={first},{first + 10}", 2),
        (f"id__gte={first}", 2),
    ]:
        reply = post(client, COUNT, {"trigger": "users_sync", "filters": line})
        assert reply.json() == {"trigger": "users_sync", "count": count}, line


def test_counting_rows_needs_the_models_view_permission(client, users_trigger):
    """Attack: change_trigger alone counted (and sent) the rows of any model."""
    client.force_login(staff("change_trigger"))

    counted = post(client, COUNT, {"trigger": "users_sync", "filters": ""})
    assert counted.status_code == 403
    assert "auth.User" in counted.json()["error"]  # JSON, for the dialog to show
    assert post(client, BATCH, {"trigger": "users_sync", "after": None}).status_code == 403


def test_foreign_keys_compare_by_their_own_value_only(admin_client):
    TriggerFactory(name="orders_sync", type="DB_UPDATE", source="testapp.Order")
    customer = Customer.objects.create(name="Ada")
    Order.objects.create(status="new", customer=customer)

    own = post(
        admin_client, COUNT, {"trigger": "orders_sync", "filters": f"customer={customer.pk}"}
    )
    related = post(admin_client, COUNT, {"trigger": "orders_sync", "filters": "customer__name=Ada"})

    assert own.json()["count"] == 1
    assert related.status_code == 400


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (COUNT, ["orders_sync"], "body"),
        (COUNT, {"trigger": ["orders_sync"]}, "trigger"),
        (COUNT, {"trigger": "orders_sync", "filters": ["status=new"]}, "filters"),
        (BATCH, {"trigger": "orders_sync", "after": {"pk": 1}}, "after"),
        (BATCH, {"trigger": "orders_sync", "after": [1]}, "after"),
        (BATCH, {"trigger": "orders_sync", "after": "abc"}, "after"),
        (BATCH, {"trigger": "orders_sync", "batch_size": [5]}, "batch_size"),
        (BATCH, {"trigger": "orders_sync", "backfill_id": {"a": 1}}, "backfill_id"),
    ],
)
def test_malformed_backfill_input_is_a_400_naming_the_field(admin_client, url, body, field):
    """Attack: a body that is not an object, `after` an object or a list: 500s."""
    TriggerFactory(name="orders_sync", type="DB_UPDATE", source="testapp.Order")
    Order.objects.create(status="new")

    response = post(admin_client, url, body)

    assert response.status_code == 400
    assert response.json()["error"].startswith(field)


def test_the_command_refuses_the_same_filters(users_trigger):
    """Attack: `eventing_backfill --filter password__startswith=…` counted hashes too."""
    with pytest.raises(CommandError, match="password__startswith"):
        call_command(
            "eventing_backfill",
            "users_sync",
            "--dry-run",
            "--filter",
            "password__startswith=pbkdf2",
            stdout=StringIO(),
        )
