"""A slow or failing JWKS endpoint never stalls the API: one fetch at a time, failures backed
off, stale keys served while refreshing, and `allow` types never look at keys at all."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework import exceptions
from rest_framework.test import APIClient

from eventing.api import auth, jwks
from eventing.models import EventLog
from tests.factories import EventTypeFactory, TriggerFactory
from tests.integration.eventing.api.test_client_jwks import jwks_of, rs256, rsa_key
from tests.support.api_fixtures import QUEUE_URL, bearer, webhook_secret
from tests.waiting import wait_until

CALLERS = 8


class SlowJWKSServer:
    """A JWKS on 127.0.0.1 that holds every request while `held` is set, or answers `status`."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.status = 200
        self.requests = 0
        self.held = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests += 1
                if server.held.is_set():
                    server.release.wait(timeout=60)
                body = server.body if server.status == 200 else b"{}"
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def issuer_key():
    return rsa_key()


@pytest.fixture
def server(issuer_key):
    slow = SlowJWKSServer(jwks_of(issuer_key, "k1"))
    yield slow
    slow.close()


def keys_at(server: SlowJWKSServer, **extra):
    return override_settings(
        EVENTING={
            "SECRETS": [webhook_secret()],
            "CLIENT_JWKS_URLS": [server.url()],
            "ALLOWED_NETWORKS": ["127.0.0.0/8"],
            "CLIENT_JWKS_TIMEOUT_S": 30,
            **extra,
        }
    )


def verify_concurrently(token: str, count: int) -> tuple[list, list[threading.Thread]]:
    """Start `count` threads verifying `token`; their results (claims or the exception)."""
    results: list = []

    def verify() -> None:
        try:
            results.append(auth.decode_api_token(token))
        except exceptions.AuthenticationFailed as exc:
            results.append(exc)

    threads = [threading.Thread(target=verify) for _ in range(count)]
    for thread in threads:
        thread.start()
    return results, threads


def waiting_on(server: SlowJWKSServer) -> int:
    return getattr(jwks.client_for(server.url()), "waiting", 0)


def test_concurrent_requests_share_one_fetch(server, issuer_key):
    """Attack: 12 anonymous requests with RS256 tokens against a slow JWKS endpoint; each
    fetched the set again and waited the full timeout, tying up every web thread.

    Now one request fetches; the others wait for that fetch and do not start their own.
    """
    server.held.set()
    with keys_at(server):
        results, threads = verify_concurrently(rs256(issuer_key, "k1"), CALLERS)
        wait_until(
            lambda: (
                server.requests >= 1
                and (waiting_on(server) == CALLERS - 1 or server.requests == CALLERS)
            ),
            message="one fetch under way and the other callers waiting for it",
        )
        server.release.set()
        for thread in threads:
            thread.join(timeout=60)

    assert server.requests == 1
    assert [r["id"] for r in results] == ["app-user-1"] * CALLERS


def test_a_failing_endpoint_is_not_fetched_again_before_its_back_off(
    server, issuer_key, monkeypatch
):
    """Attack: a JWKS endpoint answering 500; every request fetched again (and waited).

    Now the failure is remembered: requests fail at once with no fetch until the back-off
    ends, and the first request after it fetches again.
    """
    server.status = 500
    token = rs256(issuer_key, "k1")
    with keys_at(server):
        results, threads = verify_concurrently(token, CALLERS)
        for thread in threads:
            thread.join(timeout=60)
        for _ in range(20):
            with pytest.raises(exceptions.AuthenticationFailed, match="could not be fetched"):
                auth.decode_api_token(token)
        assert server.requests == 1
        assert all(isinstance(r, exceptions.AuthenticationFailed) for r in results)

        # Once the back-off is over (shortened here), the next request fetches again.
        server.status = 200
        monkeypatch.setattr(jwks, "RETRY_FIRST_S", 0.0)
        monkeypatch.setattr(jwks, "RETRY_MAX_S", 0.0)
        jwks.client_for(server.url())._retry_at = 0.0
        assert auth.decode_api_token(token)["id"] == "app-user-1"
    assert server.requests == 2


def test_stale_keys_are_served_while_one_refresh_runs(server, issuer_key):
    """Attack: once the cached set expired, every request waited for a slow refetch.

    Now requests go on with the old keys while one background fetch refreshes them.
    """
    token = rs256(issuer_key, "k1")
    with keys_at(server, CLIENT_JWKS_LIFESPAN_S=0, CLIENT_JWKS_TIMEOUT_S=3):
        assert auth.decode_api_token(token)["id"] == "app-user-1"
        server.held.set()  # every later fetch hangs until released
        for _ in range(CALLERS):
            # Returns while the refresh is held: nothing waits for it.
            assert auth.decode_api_token(token)["id"] == "app-user-1"
        # The first fetch and one refresh, not one per request.
        wait_until(lambda: server.requests >= 2, message="the refresh reaches the server")
        assert getattr(jwks.client_for(server.url()), "fetches", None) == 2
        server.release.set()
        keys = jwks.client_for(server.url())
        wait_until(lambda: not keys._fetching, message="the refresh ends")
    assert server.requests == 2


@pytest.mark.django_db(transaction=True)
def test_an_allow_type_never_fetches_keys(server, issuer_key, receiver):
    """Attack: 12 anonymous requests to an `allow` type carrying RS256 tokens tied up all 8 web
    threads, each waiting for the JWKS (5 s) although `allow` "never looks at the credentials".

    Now concurrent such requests are all answered while the JWKS endpoint hangs (for longer
    than the test waits), and it is never asked.
    """
    EventTypeFactory(name="signup", queue_rule="allow")
    TriggerFactory(name="signups", type="signup", url=receiver.url("/ok"))
    server.held.set()
    codes: list[int] = []
    # Callers sign with a key the JWKS does not hold: whatever the token, `allow` ignores it.
    token = rs256(rsa_key(), "k1")

    def queue_one(n: int) -> None:
        try:
            client = bearer(APIClient(), token)
            if n % 2:
                body = json.dumps([{"type": "signup", "payload": {"n": n}}])
                codes.append(
                    client.post(
                        "/api/eventing/events/", body, content_type="application/json"
                    ).status_code
                )
            else:
                codes.append(
                    client.post(
                        QUEUE_URL, {"type": "signup", "payload": {}}, format="json"
                    ).status_code
                )
        finally:
            connection.close()

    with keys_at(server, CLIENT_JWKS_TIMEOUT_S=120):
        threads = [threading.Thread(target=queue_one, args=(n,)) for n in range(CALLERS)]
        for thread in threads:
            thread.start()
        # Far less than the JWKS deadline: a request that consulted keys would still wait.
        wait_until(lambda: len(codes) == CALLERS, timeout_s=30, message="every request answered")
    assert sorted(codes) == sorted([200, 201] * (CALLERS // 2))
    assert EventLog.objects.filter(type="signup").count() == CALLERS
    assert server.requests == 0
    server.release.set()
    for thread in threads:
        thread.join(timeout=60)
