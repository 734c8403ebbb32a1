"""Credentials (JWT, DRF token, session) and the limits: 413, 415, 400, 429, never a 500."""

from __future__ import annotations

import io
import json
import time

import jwt
import pytest
from django.contrib.auth.models import Group, User
from django.test import override_settings
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eventing.api.parsers import BoundedJSONParser
from eventing.models import EventLog
from eventing.webhooks.signing import sc_token
from tests.factories import TriggerFactory
from tests.support.api_fixtures import (
    EVENTS_URL,
    QUEUE_URL,
    TRIGGERS_URL,
    TYPES_URL,
    bearer,
    make_token,
    webhook_secret,
)
from triggers.models import Trigger

pytestmark = pytest.mark.django_db

CLIENT_SECRETS = ["client-current-0123456789abcdef0123", "client-previous-0123456789abcdef01"]
ADMIN_TRIGGER = {
    "name": "steal_users",
    "type": "DB_INSERT",
    "source": "auth.User",
    "url": "https://attacker.example/hook",
}


def settings_with(**extra):
    return override_settings(
        EVENTING={"SECRETS": [webhook_secret()], "CLIENT_SECRETS": CLIENT_SECRETS, **extra}
    )


def pem_pair(kind: str) -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh RSA, EC P-256 or Ed25519 key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    key = {
        "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }[kind]()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class TestJWT:
    def test_sub_names_a_user(self, staff_user):
        client = bearer(APIClient(), make_token({"sub": "staff"}))
        assert client.get(TRIGGERS_URL).status_code == 200

    def test_any_configured_client_secret_verifies(self, staff_user):
        with settings_with():
            for key in CLIENT_SECRETS:
                client = bearer(APIClient(), make_token({"sub": "staff"}, key=key))
                assert client.get(TRIGGERS_URL).status_code == 200

    @pytest.mark.parametrize(
        ("token", "message"),
        [
            (lambda: make_token({"sub": "staff"}, ttl_s=-10), "expired"),
            (
                lambda: make_token({"sub": "staff"}, key="wrong-secret-0123456789abcdef0123"),
                "matches none of the client keys",
            ),
            (lambda: "not.a.jwt", "Invalid bearer token"),
            (lambda: make_token({"sub": "staff"}, key=webhook_secret()), "webhook signing secret"),
            (lambda: sc_token(), "webhook signing secret"),
        ],
    )
    def test_bad_tokens_are_401(self, staff_user, token, message):
        response = bearer(APIClient(), token()).get(TRIGGERS_URL)
        assert response.status_code == 401
        assert message in response.json()["detail"]
        assert response.json()["error"] == "authentication_failed"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="eventing"'

    def test_webhook_signing_secret_cannot_mint_api_tokens(self, staff_user):
        """Every receiver holds EVENTING["SECRETS"]: an admin token signed with it is a 401."""
        superuser = User.objects.create_superuser("root", password="pw-root-123")
        for claims in ({"role": "admin"}, {"sub": superuser.username}, {"sub": "staff"}):
            client = bearer(APIClient(), make_token(claims, key=webhook_secret()))
            response = client.post(TRIGGERS_URL, ADMIN_TRIGGER, format="json")
            assert response.status_code == 401, claims
        assert not Trigger.objects.exists()

    def test_role_and_perms_claims_grant_nothing(self):
        for claims in (
            {"role": "admin"},
            {"id": "ops", "role": "admin"},
            {"id": "r", "perms": ["triggers.add_trigger", "triggers.view_trigger"]},
        ):
            client = bearer(APIClient(), make_token(claims))
            assert client.post(TRIGGERS_URL, ADMIN_TRIGGER, format="json").status_code == 403
            assert client.get(TRIGGERS_URL).status_code == 403
            assert client.get(EVENTS_URL).status_code == 403
        assert not Trigger.objects.exists()

    def test_sub_naming_no_active_user_holds_no_permission(self, staff_user):
        assert bearer(APIClient(), make_token({"sub": "nobody"})).get(TRIGGERS_URL).status_code == (
            403
        )
        staff_user.is_active = False
        staff_user.save()
        client = bearer(APIClient(), make_token({"sub": "staff"}))
        assert client.get(TRIGGERS_URL).status_code == 403

    def test_without_client_keys_bearer_jwts_are_refused_clearly(self, staff_user):
        token = make_token({"sub": "staff"})
        with override_settings(EVENTING={"SECRETS": [webhook_secret()]}):
            response = bearer(APIClient(), token).get(TRIGGERS_URL)
        assert response.status_code == 401
        assert "CLIENT_SECRETS" in response.json()["detail"]
        assert "CLIENT_PUBLIC_KEYS" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("kind", "algorithm"), [("rsa", "RS256"), ("ec", "ES256"), ("ed25519", "EdDSA")]
    )
    def test_client_public_keys(self, staff_user, kind, algorithm):
        private, public = pem_pair(kind)
        other_private, _ = pem_pair(kind)
        now = int(time.time())
        claims = {"sub": "staff", "iat": now, "exp": now + 60}
        with override_settings(
            EVENTING={"SECRETS": [webhook_secret()], "CLIENT_PUBLIC_KEYS": [public]}
        ):
            good = jwt.encode(claims, private, algorithm=algorithm)
            assert bearer(APIClient(), good).get(TRIGGERS_URL).status_code == 200
            forged = jwt.encode(claims, other_private, algorithm=algorithm)
            assert bearer(APIClient(), forged).get(TRIGGERS_URL).status_code == 401
            # Algorithm confusion: the public key used as an HMAC secret verifies nothing.
            token = hs256_with_raw_key(claims, public.encode())
            assert bearer(APIClient(), token).get(TRIGGERS_URL).status_code == 401


def hs256_with_raw_key(claims: dict, key: bytes) -> str:
    """An HS256 JWT signed with `key` by hand (PyJWT refuses PEM-looking HMAC keys)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


class TestModelPermissions:
    """The API applies Mission Control's model permissions; staff status grants nothing."""

    @pytest.fixture
    def trigger(self):
        return TriggerFactory(
            name="billing_hook",
            url="https://billing.example/hook",
            headers=[{"name": "Authorization", "value": "Bearer very-secret-billing-token"}],
        )

    def client_for(self, user) -> APIClient:
        return bearer(APIClient(), make_token({"sub": user.username}))

    def test_operators_group_reads_but_cannot_write(self, trigger):
        operator = User.objects.create_user("operator", password="pw-op-123", is_staff=True)
        operator.groups.add(Group.objects.get(name="Eventing operators"))
        client = self.client_for(operator)
        assert client.get(TRIGGERS_URL).status_code == 200
        assert client.get(EVENTS_URL).status_code == 200
        repoint = client.patch(
            f"{TRIGGERS_URL}billing_hook/", {"url": "https://evil.example/"}, format="json"
        )
        assert repoint.status_code == 403
        trigger.refresh_from_db()
        assert trigger.url == "https://billing.example/hook"
        assert client.post(TRIGGERS_URL, ADMIN_TRIGGER, format="json").status_code == 403
        assert client.post(f"{TRIGGERS_URL}billing_hook/test/", {}, format="json").status_code == (
            403
        )
        assert client.delete(f"{TRIGGERS_URL}billing_hook/").status_code == 403
        assert client.post(TYPES_URL, {"name": "x_type"}, format="json").status_code == 403
        assert Trigger.objects.count() == 1

    def test_staff_without_permissions_gets_nothing(self, trigger):
        staff = User.objects.create_user("bare_staff", password="pw-bare-123", is_staff=True)
        session = APIClient()
        session.force_login(staff)
        for client in (self.client_for(staff), session):
            assert client.get(TRIGGERS_URL).status_code == 403
            assert client.get(EVENTS_URL).status_code == 403
            repoint = client.patch(
                f"{TRIGGERS_URL}billing_hook/", {"url": "https://evil.example/"}, format="json"
            )
            assert repoint.status_code == 403
            assert client.post(TRIGGERS_URL, ADMIN_TRIGGER, format="json").status_code == 403
        trigger.refresh_from_db()
        assert trigger.url == "https://billing.example/hook"

    def test_superuser_may_do_everything(self, trigger):
        root = User.objects.create_superuser("root", password="pw-root-123")
        client = self.client_for(root)
        response = client.patch(
            f"{TRIGGERS_URL}billing_hook/", {"url": "https://billing2.example/"}, format="json"
        )
        assert response.status_code == 200, response.json()


class TestOtherCredentials:
    def test_drf_token(self, staff_user):
        token = Token.objects.create(user=staff_user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        assert client.get(TRIGGERS_URL).status_code == 200
        client.credentials(HTTP_AUTHORIZATION="Token not-a-key")
        assert client.get(TRIGGERS_URL).status_code == 401

    def test_session_with_csrf(self, staff_user):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(staff_user)
        assert client.get(TRIGGERS_URL).status_code == 200
        refused = client.post(TRIGGERS_URL, {"name": "x"}, format="json")
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]


class TestBodies:
    def test_too_large_by_content_length_is_413_before_reading(self, anon, open_type):
        with settings_with(MAX_PAYLOAD_BYTES=100):
            body = json.dumps({"type": "order_placed", "payload": {"x": "y" * 200}})
            response = anon.generic("POST", QUEUE_URL, body, content_type="application/json")
            assert response.status_code == 413
            assert "MAX_PAYLOAD_BYTES" in response.json()["detail"]
            # Claimed size alone decides: the body is never read.
            response = anon.generic(
                "POST", EVENTS_URL, "{}", content_type="application/json", CONTENT_LENGTH="5000000"
            )
            assert response.status_code == 413

    def test_parser_caps_the_read(self):
        with settings_with(MAX_PAYLOAD_BYTES=100):
            stream = io.BytesIO(b'{"a": "' + b"x" * 10_000_000 + b'"}')
            with pytest.raises(exceptions.APIException) as caught:
                BoundedJSONParser().parse(stream, "application/json", {})
            assert caught.value.status_code == 413
            assert stream.tell() == 101

    def test_a_body_nested_past_any_payload_is_refused_by_the_parser(self):
        """Attack: 900 levels parsed, then DRF's JSONField re-encoded them recursively and, a
        few frames nearer the interpreter's limit, answered 500 instead of 400."""
        body = {"type": "order_placed", "payload": 1}
        for _ in range(900):
            body["payload"] = [body["payload"]]
        stream = io.BytesIO(json.dumps(body).encode())

        with pytest.raises(exceptions.ParseError, match="nested deeper than 100 levels"):
            BoundedJSONParser().parse(stream, "application/json", {})

    def test_not_json_is_415(self, anon, open_type):
        response = anon.generic(
            "POST", QUEUE_URL, "type=order_placed", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 415
        assert response.json()["error"] == "unsupported_media_type"
        response = anon.generic("POST", QUEUE_URL, '{"type": "order_placed"}', content_type="")
        assert response.status_code == 415
        assert "application/json" in response.json()["detail"]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ('{"type": "order_placed",', "Malformed JSON"),
            ('{"type": "order_placed", "payload": NaN}', "NaN is not valid JSON"),
            ('{"type": "order_placed", "payload": "a\\u0000b"}', "payload: NUL"),
            ('{"type": "order_placed", "payload": {"k": "\\ud800"}}', "payload.k: invalid"),
            ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
            ('{"type": "order_placed", "payload": 1' + "0" * 5000 + "}", "Malformed JSON"),
        ],
    )
    def test_malformed_json_is_400_naming_the_problem(self, anon, open_type, body, message):
        response = anon.generic("POST", EVENTS_URL, body, content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"] == "parse_error"
        assert message in response.json()["detail"]

    def test_wrong_shapes_are_400(self, anon, open_type):
        for body in ('"text"', "42", "null", "[1, 2]"):
            response = anon.generic("POST", EVENTS_URL, body, content_type="application/json")
            assert response.status_code == 400, body
            assert response.json()["detail"]
        assert (
            anon.generic("POST", QUEUE_URL, "[]", content_type="application/json").status_code
            == 400
        )
        missing = anon.post(EVENTS_URL, {"payload": {}}, format="json")
        assert missing.json()["detail"] == "type: This field is required."


class TestThrottling:
    def test_queue_rate_gives_429_with_retry_after(self, anon, open_type):
        TriggerFactory(type="order_placed")
        from django.core.cache import cache

        cache.clear()
        with settings_with(THROTTLE_RATES={"eventing_queue": "2/min"}):
            codes = [
                anon.post(QUEUE_URL, {"type": "order_placed"}, format="json").status_code
                for _ in range(3)
            ]
            assert codes == [200, 200, 429]
            response = anon.post(EVENTS_URL, {"type": "order_placed"}, format="json")
            assert response.status_code == 429
            assert int(response.headers["Retry-After"]) > 0
            assert response.json()["error"] == "throttled"
        cache.clear()
        assert EventLog.objects.count() == 2

    def test_reads_have_their_own_scope(self, staff, staff_user):
        from django.core.cache import cache

        cache.clear()
        with settings_with(THROTTLE_RATES={"eventing": "1/min"}):
            client = bearer(APIClient(), make_token({"sub": "staff"}, key=CLIENT_SECRETS[0]))
            assert client.get(TRIGGERS_URL).status_code == 200
            assert client.get(TRIGGERS_URL).status_code == 429
        cache.clear()

    def queue_from(self, client, forwarded_for: str) -> int:
        return client.post(
            QUEUE_URL,
            {"type": "order_placed"},
            format="json",
            HTTP_X_FORWARDED_FOR=forwarded_for,
            REMOTE_ADDR="10.0.0.9",
        ).status_code

    def test_rotating_forwarded_for_does_not_bypass_the_limit(self, anon, open_type):
        """Without NUM_PROXIES the header is the client's to write: it is ignored."""
        TriggerFactory(type="order_placed")
        from django.core.cache import cache

        cache.clear()
        with settings_with(THROTTLE_RATES={"eventing_queue": "2/min"}):
            codes = [self.queue_from(anon, f"203.0.113.{n}") for n in range(4)]
        cache.clear()
        assert codes == [200, 200, 429, 429]

    def test_forwarded_for_is_honoured_behind_configured_proxies(self, anon, open_type):
        TriggerFactory(type="order_placed")
        from django.core.cache import cache

        cache.clear()
        with settings_with(THROTTLE_RATES={"eventing_queue": "2/min"}, NUM_PROXIES=1):
            # The proxy appends the address it saw; what the client wrote before it is ignored.
            first = [self.queue_from(anon, f"198.51.100.{n}, 203.0.113.7") for n in range(3)]
            other_client = self.queue_from(anon, "203.0.113.8")
        cache.clear()
        assert first == [200, 200, 429]
        assert other_client == 200
