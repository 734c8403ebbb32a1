"""Client tokens verified with keys from a JWKS URL: a real JWKS server on loopback, RS256."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import override_settings
from jwt.algorithms import RSAAlgorithm
from rest_framework.test import APIClient

from eventing.models import EventLog
from tests.factories import EventTypeFactory, TriggerFactory
from tests.support.api_fixtures import QUEUE_URL, bearer, webhook_secret

pytestmark = pytest.mark.django_db


class JWKSServer:
    """Serves `body` at every path on 127.0.0.1 and counts the requests."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/.well-known/jwks.json") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(key: rsa.RSAPrivateKey, kid: str) -> bytes:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}).encode()


def rs256(key: rsa.RSAPrivateKey, kid: str, **headers) -> str:
    now = int(time.time())
    claims = {"id": "app-user-1", "iat": now, "exp": now + 600}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **headers})


@pytest.fixture
def issuer_key():
    return rsa_key()


@pytest.fixture
def jwks_server(issuer_key):
    server = JWKSServer(jwks_of(issuer_key, "k1"))
    yield server
    server.close()


@pytest.fixture
def members(receiver):
    EventTypeFactory(name="members_only", queue_rule="authenticated")
    TriggerFactory(name="members_hook", type="members_only", url=receiver.url("/ok"))


def jwks_settings(*urls: str, **extra):
    return override_settings(
        EVENTING={
            "SECRETS": [webhook_secret()],
            "CLIENT_JWKS_URLS": list(urls),
            "ALLOWED_NETWORKS": ["127.0.0.0/8"],
            **extra,
        }
    )


def queue(token: str):
    client = bearer(APIClient(), token)
    return client.post(QUEUE_URL, {"type": "members_only", "payload": {}}, format="json")


def test_rs256_token_verifies_with_a_key_from_the_jwks(members, jwks_server, issuer_key):
    with jwks_settings(jwks_server.url()):
        first = queue(rs256(issuer_key, "k1"))
        second = queue(rs256(issuer_key, "k1"))
        assert (first.status_code, second.status_code) == (200, 200), first.json()
        assert EventLog.objects.count() == 2
        assert len(jwks_server.requests) == 1  # the set is cached for its lifespan

        forged = queue(rs256(rsa_key(), "k1"))  # right kid, another key
        assert forged.status_code == 401
        assert "signature matches none" in forged.json()["detail"]
        unknown = queue(rs256(issuer_key, "k2"))
        assert unknown.status_code == 401
        assert "'k2'" in unknown.json()["detail"]
    assert EventLog.objects.count() == 2


def test_a_jwks_url_listed_in_client_public_keys_is_used_too(members, jwks_server, issuer_key):
    with override_settings(
        EVENTING={
            "SECRETS": [webhook_secret()],
            "CLIENT_PUBLIC_KEYS": [jwks_server.url("/in-public-keys")],
            "ALLOWED_NETWORKS": ["127.0.0.0/8"],
        }
    ):
        assert queue(rs256(issuer_key, "k1")).status_code == 200
    assert jwks_server.requests == ["/in-public-keys"]


def test_an_internal_jwks_url_is_never_fetched(members, jwks_server, issuer_key):
    with jwks_settings(jwks_server.url("/internal"), ALLOWED_NETWORKS=[]):
        refused = queue(rs256(issuer_key, "k1"))
    assert refused.status_code == 401
    assert "could not be fetched" in refused.json()["detail"]
    assert jwks_server.requests == []  # the guard refused the connection before any request
    assert not EventLog.objects.exists()


def test_a_tokens_own_jwks_header_is_ignored(members, jwks_server, issuer_key):
    attacker_key = rsa_key()
    attacker = JWKSServer(jwks_of(attacker_key, "k1"))
    try:
        with jwks_settings(jwks_server.url("/issuer")):
            token = rs256(attacker_key, "k1", jku=attacker.url())
            assert queue(token).status_code == 401
        assert attacker.requests == []
    finally:
        attacker.close()


def test_an_oversized_jwks_is_refused(members, jwks_server, issuer_key):
    jwks_server.body = json.dumps({"keys": [], "padding": "x" * 200_000}).encode()
    with jwks_settings(jwks_server.url("/huge")):
        refused = queue(rs256(issuer_key, "k1"))
    assert refused.status_code == 401
    assert "could not be fetched" in refused.json()["detail"]
    assert jwks_server.requests == ["/huge"]
