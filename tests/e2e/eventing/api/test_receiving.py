"""The receiving side: eventing.verify helpers and the DRF WebhookAuthentication class."""

from __future__ import annotations

import json

import jwt
import pytest
import requests
from django.conf import settings as django_settings
from django.test import override_settings
from rest_framework.test import APIRequestFactory

from eventing.api.receiving import WebhookAuthentication
from eventing.testing import signed_request
from eventing.verify import WebhookVerificationError, verify_sc_token, verify_webhook
from eventing.webhooks.signing import signing_public_key_pem
from tests.factories import EventTypeFactory, TriggerFactory
from tests.support.api_receiving_urls import OrderPlacedHook

pytestmark = pytest.mark.django_db


def signed_for(trigger, payload, tamper=None):
    """A delivery of `trigger` carrying `payload`, as Eventing signs it (eventing.testing)."""
    return signed_request(
        payload,
        type=trigger.type,
        trigger=trigger.name,
        signing_secret=trigger.signing_secret,
        tamper=tamper,
    )


def call_hook(body: bytes, headers: dict[str, str], view=OrderPlacedHook):
    meta = {
        f"HTTP_{name.upper().replace('-', '_')}": value
        for name, value in headers.items()
        if name.lower() != "content-type"
    }
    request = APIRequestFactory().post(
        "/hooks/order-placed/", body, content_type="application/json", **meta
    )
    return view.as_view()(request)


def test_verify_webhook_accepts_our_request_and_rejects_tampering():
    trigger = TriggerFactory(name="orders_hook")
    request = signed_for(trigger, {"order_id": 1})
    claims = verify_webhook(request.body, request.headers, signing_secret=trigger.signing_secret)
    assert claims["role"] == "SpaceCloud"
    assert claims["id"] == "eventing"
    assert {"iat", "exp", "jti"} <= set(claims)
    for tamper, refusal in (
        ("body", "webhook-signature does not match"),
        ("signature", "webhook-signature does not match"),
        ("token", "Invalid X-SC-Token: Signature verification failed"),
        ("expired", "Invalid X-SC-Token: Signature has expired"),
    ):
        spoiled = signed_for(trigger, {"order_id": 1}, tamper=tamper)
        with pytest.raises(WebhookVerificationError, match=refusal):
            verify_webhook(spoiled.body, spoiled.headers, signing_secret=trigger.signing_secret)
    with pytest.raises(WebhookVerificationError, match="X-SC-Token"):
        verify_webhook(
            request.body,
            {**request.headers, "X-SC-Token": "Bearer x.y.z"},
            signing_secret=trigger.signing_secret,
        )


def test_verify_webhook_refuses_a_body_it_cannot_bind_to_the_token():
    """A genuine token replayed with a forged body: refused unless token-only is asked for."""
    trigger = TriggerFactory(name="orders_hook")
    request = signed_for(trigger, {"order_id": 1})
    forged = request.body.replace(b'"order_id":1', b'"order_id":666')
    with pytest.raises(WebhookVerificationError, match="signing_secret"):
        verify_webhook(forged, request.headers)
    claims = verify_webhook(forged, request.headers, token_only=True)
    assert claims["role"] == "SpaceCloud"


def test_webhook_authentication_refuses_unsigned_bodies_by_default():
    trigger = TriggerFactory(name="orders_hook")
    request = signed_for(trigger, {"order_id": 5})
    forged = request.body.replace(b'"order_id":5', b'"order_id":6')

    class TokenChecked(WebhookAuthentication):
        """No signing secret configured."""

    class TokenOnly(WebhookAuthentication):
        token_only = True

    for auth_class, expected in ((TokenChecked, 401), (TokenOnly, 200)):
        view = type("Hook", (OrderPlacedHook,), {"authentication_classes": [auth_class]})
        response = call_hook(forged, request.headers, view=view)
        assert response.status_code == expected, response.data
    refused = call_hook(
        forged,
        request.headers,
        view=type("Hook", (OrderPlacedHook,), {"authentication_classes": [TokenChecked]}),
    )
    assert "signing_secret" in str(refused.data["detail"])


def private_pem(kind: str) -> str:
    """A fresh unencrypted PKCS#8 PEM private key: RSA 2048 or Ed25519."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize(("kind", "algorithm"), [("rsa", "RS256"), ("ed25519", "EdDSA")])
def test_asymmetric_signing_key_verifies_with_the_public_key_only(kind, algorithm):
    """With SIGNING_KEY, receivers hold only the public key: eventing.verify and PyJWT agree."""
    trigger = TriggerFactory(name="orders_hook")
    pem = private_pem(kind)
    with override_settings(EVENTING={**django_settings.EVENTING, "SIGNING_KEY": pem}):
        public = signing_public_key_pem()
        request = signed_for(trigger, {"order_id": 3})
        # The project's own defaults include SIGNING_KEY's public half (eventing_listen).
        assert verify_sc_token(request.headers["X-SC-Token"])["role"] == "SpaceCloud"
    token = request.headers["X-SC-Token"].split()[1]
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    claims = verify_webhook(
        request.body, request.headers, public_keys=[public], signing_secret=trigger.signing_secret
    )
    assert claims["id"] == "eventing"
    plain = jwt.decode(token, public, algorithms=[algorithm], options={"require": ["exp", "jti"]})
    assert plain["role"] == "SpaceCloud"
    # The HS256 secrets do not verify it, nor does another key.
    with pytest.raises(WebhookVerificationError):
        verify_sc_token(request.headers["X-SC-Token"], secrets=django_settings.EVENTING["SECRETS"])
    with override_settings(EVENTING={**django_settings.EVENTING, "SIGNING_KEY": private_pem(kind)}):
        stranger = signing_public_key_pem()
    with pytest.raises(WebhookVerificationError, match="Signature verification failed"):
        verify_sc_token(request.headers["X-SC-Token"], public_keys=[stranger])


def test_webhook_authentication_class():
    trigger = TriggerFactory(name="orders_hook")
    request = signed_for(trigger, {"order_id": 42})
    response = call_hook(request.body, request.headers)
    assert response.status_code == 200
    assert response.data == {"received": request.event_id, "order_id": 42, "sender": "eventing"}
    tampered = signed_for(trigger, {"order_id": 42}, tamper="body")
    refused = call_hook(tampered.body, tampered.headers)
    assert refused.status_code == 401
    assert "webhook-signature does not match" in str(refused.data["detail"])
    unsigned = {k: v for k, v in request.headers.items() if k != "X-SC-Token"}
    assert call_hook(request.body, unsigned).status_code == 401


@pytest.mark.e2e
@pytest.mark.urls("tests.support.api_receiving_urls")
@pytest.mark.django_db(transaction=True)
def test_synchronous_queue_to_the_example_receiver(live_server):
    """Full circle over real HTTP: queue synchronously, the example view verifies and replies."""
    EventTypeFactory(name="order_placed", queue_rule="allow")
    TriggerFactory(
        name="orders_hook", type="order_placed", url=f"{live_server.url}/hooks/order-placed/"
    )
    client = requests.Session()
    client.trust_env = False  # no proxy between us and 127.0.0.1
    response = client.post(
        f"{live_server.url}/v1/api/default/eventing/queue",
        data=json.dumps(
            {"type": "order_placed", "payload": {"order_id": 9}, "isSynchronous": True}
        ),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["order_id"] == 9
    assert result["sender"] == "eventing"
    assert result["received"] == response.json()["event_ids"][0]
