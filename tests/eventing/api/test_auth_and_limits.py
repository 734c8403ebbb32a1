"""Credentials (JWT, DRF token, session) and the limits: 413, 415, 400, 429, never a 500."""

from __future__ import annotations

import io
import json

import pytest
from django.test import override_settings
from rest_framework import exceptions
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eventing.api.parsers import BoundedJSONParser
from eventing.models import EventLog
from eventing.signing import sc_token
from tests.eventing.api.conftest import EVENTS_URL, QUEUE_URL, TRIGGERS_URL, bearer, make_token
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db

SECRETS = ["current-secret-0123456789abcdef0123", "previous-secret-0123456789abcdef012"]


def settings_with(**extra):
    return override_settings(EVENTING={"SECRETS": SECRETS, **extra})


class TestJWT:
    def test_sub_names_a_user(self, staff_user):
        client = bearer(APIClient(), make_token({"sub": "staff"}))
        assert client.get(TRIGGERS_URL).status_code == 200

    def test_any_configured_secret_verifies(self, staff_user):
        with settings_with():
            for key in SECRETS:
                client = bearer(APIClient(), make_token({"sub": "staff"}, key=key))
                assert client.get(TRIGGERS_URL).status_code == 200

    @pytest.mark.parametrize(
        ("token", "message"),
        [
            (lambda: make_token({"sub": "staff"}, ttl_s=-10), "expired"),
            (
                lambda: make_token({"sub": "staff"}, key="wrong-secret-0123456789abcdef0123"),
                "matches none of EVENTING['SECRETS']",
            ),
            (lambda: "not.a.jwt", "Invalid bearer token"),
            (lambda: make_token({"sub": "nobody"}), "no active user"),
            (lambda: f"{sc_token()}", "not API credentials"),
        ],
    )
    def test_bad_tokens_are_401(self, staff_user, token, message):
        response = bearer(APIClient(), token()).get(TRIGGERS_URL)
        assert response.status_code == 401
        assert message in response.json()["detail"]
        assert response.json()["error"] == "authentication_failed"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="eventing"'

    def test_inactive_user_is_refused(self, staff_user):
        staff_user.is_active = False
        staff_user.save()
        assert (
            bearer(APIClient(), make_token({"sub": "staff"})).get(TRIGGERS_URL).status_code == 401
        )

    def test_admin_role_principal_manages_everything(self):
        client = bearer(APIClient(), make_token({"id": "ops", "role": "admin"}))
        assert client.get(EVENTS_URL).status_code == 200
        service = bearer(APIClient(), make_token({"id": "billing", "role": "service"}))
        assert service.get(EVENTS_URL).status_code == 403
        reader = bearer(APIClient(), make_token({"id": "r", "perms": ["eventing.view_eventlog"]}))
        assert reader.get(EVENTS_URL).status_code == 200


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
            assert codes == [202, 202, 429]
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
            client = bearer(APIClient(), make_token({"sub": "staff"}, key=SECRETS[0]))
            assert client.get(TRIGGERS_URL).status_code == 200
            assert client.get(TRIGGERS_URL).status_code == 429
        cache.clear()
