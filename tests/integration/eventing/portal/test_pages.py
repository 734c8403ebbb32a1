"""The portal's pages do what the API does, through the same services, for their owner."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from eventing import portal_url
from eventing.conf import get_settings
from eventing.models import EventLog, RetiredSecret, Subscription
from eventing.subscriptions import services
from tests.integration.eventing.portal.conftest import portal_client
from tests.receiver import Received

pytestmark = pytest.mark.django_db


def secret_on(response) -> str:
    found = re.search(rb'id="portal-secret">(whsec_[^<]+)<', response.content)
    assert found, response.content
    return found.group(1).decode()


def create(client: Client, url: str, **fields) -> tuple:
    data = {"url": url, "types": ["invoice_paid"], "filter": "", "description": "", **fields}
    return client.post("/portal/endpoints/new/", data)


def test_creating_an_endpoint_shows_its_secret_once(catalog, owners, receiver):
    alice, _ = owners
    client = portal_client(alice)
    assert b"invoice_voided" in client.get("/portal/endpoints/new/").content
    assert b"internal_audit" not in client.get("/portal/endpoints/new/").content

    response = create(client, receiver.url("/a"), filter='{"invoice": 7}', description="books")

    assert response.status_code == 201
    [subscription] = services.subscriptions_of(alice)
    assert secret_on(response) == subscription.trigger.signing_secret
    assert subscription.filter == {"invoice": 7}
    assert subscription.description == "books"
    listing = client.get("/portal/endpoints/")
    assert receiver.url("/a").encode() in listing.content
    assert subscription.trigger.signing_secret.encode() not in listing.content
    detail = client.get(f"/portal/endpoints/{subscription.pk}/")
    assert subscription.trigger.signing_secret.encode() not in detail.content


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"url": "ftp://example.com/x"}, "url", b"http"),
        ({"url": "http://10.1.2.3/hook"}, "url", b"10.1.2.3"),
        ({"types": ["internal_audit"]}, "types", b"internal_audit"),
        ({"types": []}, "types", b"required"),
        ({"filter": "{not json"}, "filter", b"Not valid JSON"),
        ({"filter": "[1]"}, "filter", b"JSON object"),
    ],
    ids=["scheme", "private-address", "private-type", "no-type", "bad-json", "not-object"],
)
def test_bad_input_is_refused_beside_its_field(catalog, owners, fields, field, words):
    alice, _ = owners
    client = portal_client(alice)
    data = {"url": "http://127.0.0.1:9/hook", **fields}

    response = create(client, **data)

    assert response.status_code == 200
    errors = re.search(
        rb'id="id_' + field.encode() + rb'.*?<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>',
        response.content,
        re.S,
    )
    assert errors, response.content.decode()
    assert words in errors.group(1)
    assert not Subscription.objects.exists()


def test_the_owners_cap_is_a_form_error(catalog, owners, settings):
    settings.EVENTING = {**settings.EVENTING, "OWNER_MAX_SUBSCRIPTIONS": 1}
    alice, _ = owners
    client = portal_client(alice)
    assert create(client, "http://127.0.0.1:9/one").status_code == 201

    response = create(client, "http://127.0.0.1:9/two")

    assert response.status_code == 200
    assert b"OWNER_MAX_SUBSCRIPTIONS" in response.content
    assert services.subscriptions_of(alice).count() == 1


def test_edit_disable_enable_and_delete(catalog, owners, receiver):
    alice, _ = owners
    subscription, _ = services.create_subscription(
        alice, url=receiver.url("/a"), types=["invoice_paid"]
    )
    client = portal_client(alice)
    base = f"/portal/endpoints/{subscription.pk}"
    assert receiver.url("/a").encode() in client.get(f"{base}/edit/").content

    saved = client.post(
        f"{base}/edit/",
        {"url": receiver.url("/b"), "types": ["invoice_paid", "invoice_voided"], "filter": ""},
    )
    assert saved.status_code == 302
    subscription.refresh_from_db()
    subscription.trigger.refresh_from_db()
    assert subscription.trigger.url == receiver.url("/b")
    assert subscription.types == ["invoice_paid", "invoice_voided"]
    assert b"Endpoint saved." in client.get(saved["Location"]).content

    client.post(f"{base}/enabled/", {"enabled": "0"})
    subscription.refresh_from_db()
    subscription.trigger.refresh_from_db()
    assert (subscription.enabled, subscription.trigger.enabled) == (False, False)
    client.post(f"{base}/enabled/", {"enabled": "1"})
    subscription.refresh_from_db()
    assert subscription.enabled is True

    assert client.get(f"{base}/delete/").status_code == 200
    assert Subscription.objects.filter(pk=subscription.pk).exists()
    deleted = client.post(f"{base}/delete/")
    assert deleted["Location"] == "/portal/endpoints/?notice=deleted"
    assert not Subscription.objects.filter(pk=subscription.pk).exists()


def test_test_send_shows_the_delivery_and_redeliver_sends_it_again(catalog, owners, receiver):
    alice, _ = owners
    subscription, _ = services.create_subscription(
        alice, url=receiver.url("/a"), types=["invoice_paid"]
    )
    client = portal_client(alice)

    sent = client.post(f"/portal/endpoints/{subscription.pk}/test/", {"type": "invoice_paid"})

    assert sent.status_code == 302
    [received] = receiver.wait_for("/a")
    assert isinstance(received, Received)
    assert received.json()["data"] == {"invoice": 7, "amount": "12.50"}
    event = EventLog.objects.get(trigger_id=subscription.trigger_id)
    assert sent["Location"].startswith(
        f"/portal/endpoints/{subscription.pk}/deliveries/{event.pk}/"
    )
    page = client.get(sent["Location"])
    assert b"Test event delivered." in page.content
    assert b"processed" in page.content
    assert b"&quot;amount&quot;: &quot;12.50&quot;" in page.content
    assert b"Attempt 1" in page.content
    # The whole body as sent (the CloudEvents envelope), with its id.
    sent_body = re.search(rb'class="portal-request-body">(.*?)</pre>', page.content, re.S)
    assert b"specversion" in sent_body.group(1)
    assert str(event.pk).encode() in sent_body.group(1)

    again = client.post(f"/portal/endpoints/{subscription.pk}/deliveries/{event.pk}/redeliver/")

    assert again.status_code == 302
    event.refresh_from_db()
    assert event.status == "staged"
    assert event.attempts == 0
    listing = client.get(f"/portal/endpoints/{subscription.pk}/deliveries/")
    assert str(event.pk).encode() in listing.content
    refused = client.post(f"/portal/endpoints/{subscription.pk}/deliveries/{event.pk}/redeliver/")
    assert refused.status_code == 400
    assert b"only a finished event is redelivered" in refused.content


def test_a_test_of_a_type_the_endpoint_lacks_is_refused(catalog, owners):
    alice, _ = owners
    subscription, _ = services.create_subscription(
        alice, url="http://127.0.0.1:9/a", types=["invoice_paid"]
    )
    response = portal_client(alice).post(
        f"/portal/endpoints/{subscription.pk}/test/", {"type": "invoice_voided"}
    )
    assert response.status_code == 400
    assert b"One of this subscription" in response.content
    assert not EventLog.objects.exists()


def test_the_secret_is_revealed_only_after_a_confirmation(catalog, owners):
    alice, _ = owners
    subscription, secret = services.create_subscription(
        alice, url="http://127.0.0.1:9/a", types=["invoice_paid"]
    )
    client = portal_client(alice)
    url = f"/portal/endpoints/{subscription.pk}/secret/"

    assert secret.encode() not in client.get(url).content
    unconfirmed = client.post(url, {})
    assert secret.encode() not in unconfirmed.content
    assert b"This field is required" in unconfirmed.content

    revealed = client.post(url, {"confirm": "on"})

    assert secret_on(revealed) == secret
    assert "no-store" in revealed["Cache-Control"]


def test_rotating_shows_the_new_secret_and_the_grace_period(catalog, owners, settings):
    settings.EVENTING = {**settings.EVENTING, "SECRET_ROTATION_GRACE_S": 3600}
    alice, _ = owners
    subscription, old = services.create_subscription(
        alice, url="http://127.0.0.1:9/a", types=["invoice_paid"]
    )
    client = portal_client(alice)
    url = f"/portal/endpoints/{subscription.pk}/rotate/"
    assert client.post(url, {}).status_code == 200
    subscription.trigger.refresh_from_db()
    assert subscription.trigger.signing_secret == old

    rotated = client.post(url, {"confirm": "on"})

    subscription.trigger.refresh_from_db()
    new = secret_on(rotated)
    assert new == subscription.trigger.signing_secret != old
    [retired] = RetiredSecret.objects.filter(trigger_id=subscription.trigger_id)
    assert retired.secret == old
    shown = retired.expires_at.strftime("%Y-%m-%d %H:%M").encode()
    assert b'id="portal-grace"' in rotated.content
    assert shown in rotated.content
    assert shown in client.get(f"/portal/endpoints/{subscription.pk}/").content


def test_the_catalog_shows_public_types_with_schema_and_example(catalog, owners):
    alice, _ = owners
    page = portal_client(alice).get("/portal/catalog/")
    assert b"invoice_paid" in page.content
    assert b"An invoice was paid." in page.content
    assert b"&quot;required&quot;" in page.content
    assert b"internal_audit" not in page.content


def test_every_post_needs_the_csrf_token(catalog, owners):
    alice, _ = owners
    subscription, secret = services.create_subscription(
        alice, url="http://127.0.0.1:9/a", types=["invoice_paid"]
    )
    client = Client(enforce_csrf_checks=True)
    client.get(portal_url(alice))
    for path in ("new/", f"{subscription.pk}/rotate/", f"{subscription.pk}/delete/"):
        response = client.post(f"/portal/endpoints/{path}", {"confirm": "on", "url": "x"})
        assert response.status_code == 403, path
    subscription.trigger.refresh_from_db()
    assert subscription.trigger.signing_secret == secret
    assert Subscription.objects.filter(pk=subscription.pk).exists()
    # With the form's token the same POST goes through.
    form = client.get(f"/portal/endpoints/{subscription.pk}/rotate/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', form.content).group(1)
    done = client.post(
        f"/portal/endpoints/{subscription.pk}/rotate/",
        {"confirm": "on", "csrfmiddlewaretoken": token.decode()},
    )
    assert done.status_code == 200


@pytest.mark.parametrize(
    ("ancestors", "csp", "xfo"),
    [
        (["'self'"], "frame-ancestors 'self'", "SAMEORIGIN"),
        (
            ["'self'", "https://app.example.com"],
            "frame-ancestors 'self' https://app.example.com",
            None,
        ),
        ([], "frame-ancestors 'none'", "DENY"),
    ],
    ids=["default-same-origin", "host-site", "never"],
)
def test_framing_follows_the_setting(owners, settings, ancestors, csp, xfo):
    settings.EVENTING = {**settings.EVENTING, "PORTAL_FRAME_ANCESTORS": ancestors}
    alice, _ = owners
    response = portal_client(alice).get("/portal/endpoints/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"].endswith(csp)
    assert response.get("X-Frame-Options") == xfo
    assert response["Referrer-Policy"] == "same-origin"


def test_a_frame_ancestor_that_would_add_a_directive_is_refused(settings):
    settings.EVENTING = {**settings.EVENTING, "PORTAL_FRAME_ANCESTORS": ["* ; script-src *"]}
    with pytest.raises(ImproperlyConfigured, match="PORTAL_FRAME_ANCESTORS"):
        get_settings()
