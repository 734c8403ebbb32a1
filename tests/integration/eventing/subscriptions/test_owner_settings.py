"""OWNER_MODEL and OWNER_RESOLVER: validated as every setting, checked at startup."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from eventing.checks import check_owners
from eventing.conf import get_settings
from eventing.owners import owner_key, owner_model, resolve_owner
from tests.testapp.models import Customer


def with_eventing(settings, **values):
    settings.EVENTING = {**settings.EVENTING, **values}


def test_default_owner_model_is_the_user_model(settings):
    assert owner_model()._meta.label == settings.AUTH_USER_MODEL


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("OWNER_MODEL", "not a label"),
        ("OWNER_RESOLVER", "nodots"),
        ("OWNER_MAX_SUBSCRIPTIONS", -1),
        ("SUBSCRIPTION_MAX_IN_FLIGHT", 0),
        ("SUBSCRIPTION_RATE_LIMIT", 0),
        ("SECRET_ROTATION_GRACE_S", "1d"),
    ],
)
def test_wrong_values_name_the_key(settings, key, value):
    with_eventing(settings, **{key: value})
    with pytest.raises(ImproperlyConfigured, match=key):
        get_settings()


def test_checks_refuse_an_unknown_model_and_an_unimportable_resolver(settings):
    with_eventing(settings, OWNER_MODEL="shop.Nothing", OWNER_RESOLVER="shop.owners.nothing")
    assert sorted(e.id for e in check_owners()) == ["eventing.E020", "eventing.E021"]
    with_eventing(
        settings,
        OWNER_MODEL="testapp.Customer",
        OWNER_RESOLVER="tests.support.portal_resolvers.customer_of_user",
    )
    assert check_owners() == []


def test_checks_refuse_the_default_resolver_with_another_owner_model(settings):
    """The default resolver returns a user: with Customer owners every owner view would 500."""
    with_eventing(
        settings, OWNER_MODEL="testapp.Customer", OWNER_RESOLVER="eventing.owners.request_user"
    )
    [error] = check_owners()
    assert error.id == "eventing.E022"
    assert "testapp.Customer" in error.msg
    assert "OWNER_RESOLVER" in error.msg


@pytest.mark.django_db
def test_a_resolver_answering_with_another_model_is_refused_naming_the_setting(
    settings, rf, django_user_model
):
    with_eventing(settings, OWNER_MODEL="testapp.Customer")
    request = rf.get("/")
    request.user = django_user_model.objects.create_user("acme")
    with pytest.raises(ImproperlyConfigured, match="OWNER_RESOLVER"):
        resolve_owner(request)
    with_eventing(
        OWNER_RESOLVER="tests.support.portal_resolvers.customer_of_user", settings=settings
    )
    customer = Customer.objects.create(name="acme")
    assert resolve_owner(request) == customer


@pytest.mark.django_db
def test_owner_key_refuses_an_instance_of_another_model(settings, django_user_model):
    with_eventing(settings, OWNER_MODEL="testapp.Customer")
    customer = Customer.objects.create(name="acme")
    assert owner_key(customer).filter() == {
        "owner_model": "testapp.Customer",
        "owner_id": str(customer.pk),
    }
    with pytest.raises(TypeError, match="testapp.Customer"):
        owner_key(django_user_model.objects.create_user("u"))
