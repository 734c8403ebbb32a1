"""The signed link: one use, short-lived, tamper-proof; it opens a portal session of its own."""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock

import pytest
from django.core import signing
from django.test import Client, override_settings

from eventing import portal_url
from eventing.portal.links import LINK_SALT
from eventing.portal.sessions import COOKIE
from eventing.subscriptions import services
from tests.integration.eventing.portal.conftest import portal_client

pytestmark = pytest.mark.django_db


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def test_a_link_opens_the_owners_portal_with_a_cookie_scoped_to_the_portal(catalog, owners):
    alice, bob = owners
    services.create_subscription(alice, url="http://127.0.0.1:9/alice", types=["invoice_paid"])
    services.create_subscription(bob, url="http://127.0.0.1:9/bob", types=["invoice_paid"])
    client = Client()

    response = client.get(portal_url(alice))

    assert response.status_code == 302
    assert response["Location"] == "/portal/endpoints/"
    cookie = response.cookies[COOKIE]
    assert cookie["path"] == "/portal/"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    # The host's session is not touched: the link logs nobody into the host site.
    assert "sessionid" not in response.cookies
    page = client.get("/portal/endpoints/")
    assert page.status_code == 200
    assert b"http://127.0.0.1:9/alice" in page.content
    assert b"http://127.0.0.1:9/bob" not in page.content
    assert client.get("/mission-control/").status_code == 302


def test_a_link_opens_once(owners):
    alice, _ = owners
    url = portal_url(alice)
    assert Client().get(url).status_code == 302

    again = Client().get(url)

    assert again.status_code == 400
    assert b"already used" in again.content
    assert COOKIE not in again.cookies


def test_an_expired_link_is_refused(owners, settings):
    settings.EVENTING = {**settings.EVENTING, "PORTAL_LINK_MAX_AGE_S": 300}
    alice, _ = owners
    url = portal_url(alice)
    later = time.time() + 301
    with mock.patch("django.core.signing.time.time", return_value=later):
        response = Client().get(url)
    assert response.status_code == 400
    assert b"expired" in response.content
    assert COOKIE not in response.cookies


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        lambda token: signing.dumps(signing.loads(token, salt=LINK_SALT) | {"o": "1"}, salt="x"),
        lambda token: signing.dumps({"m": "auth.User", "o": "1", "n": "n"}, salt="other.purpose"),
        lambda token: "not-a-token",
    ],
    ids=["signature-changed", "owner-changed-resigned-elsewhere", "other-salt", "garbage"],
)
def test_a_tampered_link_is_refused(owners, tamper):
    alice, _ = owners
    token = token_of(portal_url(alice))

    response = Client().get(f"/portal/enter/{tamper(token)}/")

    assert response.status_code == 400
    assert b"not valid" in response.content
    assert COOKIE not in response.cookies


def test_a_link_for_an_owner_of_another_model_opens_nothing(owners, settings):
    alice, _ = owners
    url = portal_url(alice)
    settings.EVENTING = {**settings.EVENTING, "OWNER_MODEL": "testapp.Customer"}
    client = Client()
    client.get(url)
    assert client.get("/portal/endpoints/").status_code == 302  # to the login page


def test_portal_url_refuses_what_is_not_an_owner(catalog):
    with pytest.raises(TypeError, match="OWNER_MODEL"):
        portal_url(object())


def test_portal_url_is_absolute_with_a_request_or_base_url(owners, rf):
    alice, _ = owners
    assert portal_url(alice, base_url="https://app.example.com/").startswith(
        "https://app.example.com/portal/enter/"
    )
    assert portal_url(alice, request=rf.get("/")).startswith("http://testserver/portal/enter/")


def test_signing_out_ends_the_session(owners):
    alice, _ = owners
    client = portal_client(alice)
    key = client.cookies[COOKIE].value

    response = client.post("/portal/sign-out/")

    assert response.status_code == 200
    assert response.cookies[COOKIE].value == ""
    stale = Client()
    stale.cookies[COOKIE] = key
    assert stale.get("/portal/endpoints/").status_code == 302


def test_a_session_ends_with_its_age(owners, settings):
    settings.EVENTING = {**settings.EVENTING, "PORTAL_SESSION_MAX_AGE_S": 60}
    alice, _ = owners
    client = portal_client(alice)
    assert client.cookies[COOKIE]["max-age"] == 60
    assert client.get("/portal/endpoints/").status_code == 200
    later = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=61)
    # The session engine (database) compares its expiry with now: a minute on, it has none.
    with mock.patch("django.contrib.sessions.backends.db.timezone.now", return_value=later):
        assert client.get("/portal/endpoints/").status_code == 302


def test_a_session_ends_with_its_age_whatever_the_session_engine(owners, settings):
    """The signed-cookies engine keeps a session for SESSION_COOKIE_AGE: the portal's own end
    still applies."""
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.EVENTING = {**settings.EVENTING, "PORTAL_SESSION_MAX_AGE_S": 60}
    alice, _ = owners
    client = portal_client(alice)
    assert client.get("/portal/endpoints/").status_code == 200
    with mock.patch("eventing.portal.sessions.time.time", return_value=time.time() + 61):
        assert client.get("/portal/endpoints/").status_code == 302


def test_the_host_login_reaches_the_resolvers_owner(catalog, owners):
    alice, _ = owners
    services.create_subscription(alice, url="http://127.0.0.1:9/alice", types=["invoice_paid"])
    client = Client()
    assert client.get("/portal/endpoints/")["Location"].startswith("/mission-control/login/")

    client.force_login(alice)
    page = client.get("/portal/endpoints/")

    assert page.status_code == 200
    assert b"http://127.0.0.1:9/alice" in page.content
    assert COOKIE not in page.cookies


@override_settings(ROOT_URLCONF="tests.support.portal_elsewhere_urls")
def test_the_portal_works_where_the_host_mounts_it(catalog, owners):
    alice, _ = owners
    url = portal_url(alice)
    assert url.startswith("/account/webhooks/enter/")
    client = Client()

    response = client.get(url)

    assert response["Location"] == "/account/webhooks/endpoints/"
    assert response.cookies[COOKIE]["path"] == "/account/webhooks/"
    assert client.get("/account/webhooks/catalog/").status_code == 200


def test_a_portal_session_is_no_login_to_the_api_or_the_admin(owners):
    alice, _ = owners
    alice.is_staff = alice.is_superuser = True
    alice.save()
    client = portal_client(alice)
    assert client.get("/portal/endpoints/").status_code == 200
    assert client.get("/api/eventing/subscriptions/").status_code in (401, 403)
    assert client.get("/mission-control/")["Location"].startswith("/mission-control/login/")


def test_a_login_without_an_owner_is_told_so(owners, settings):
    settings.EVENTING = {
        **settings.EVENTING,
        "OWNER_RESOLVER": "tests.support.portal_resolvers.no_owner",
    }
    alice, _ = owners
    client = Client()
    client.force_login(alice)

    response = client.get("/portal/endpoints/")

    assert response.status_code == 403
    assert b"no webhooks portal" in response.content
    # A link still names its owner, whatever the resolver says.
    assert portal_client(alice).get("/portal/endpoints/").status_code == 200


def test_a_cross_site_cookie_is_secure(owners, settings):
    """SameSite=None (a portal framed by another site) is sent by browsers only when Secure."""
    settings.EVENTING = {**settings.EVENTING, "PORTAL_COOKIE_SAMESITE": "None"}
    alice, _ = owners
    response = Client().get(portal_url(alice))
    cookie = response.cookies[COOKIE]
    assert (cookie["samesite"], cookie["secure"]) == ("None", True)
