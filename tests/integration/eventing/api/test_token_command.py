"""`manage.py eventing_token <username>`: a bearer JWT the API accepts as that user."""

from __future__ import annotations

from io import StringIO

import jwt
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from rest_framework.test import APIClient

from tests.factories import EventTypeFactory, TriggerFactory
from tests.support.api_fixtures import EVENTS_URL, bearer, secret, webhook_secret
from triggers.models import EventType

pytestmark = pytest.mark.django_db


def token(*args: str) -> str:
    out = StringIO()
    call_command("eventing_token", *args, stdout=out)
    return out.getvalue().strip()


def test_the_token_queues_a_custom_event_as_that_user():
    User.objects.create_user("ada", password="pw-ada-12345")
    EventTypeFactory(name="default", queue_rule=EventType.QueueRule.AUTHENTICATED)
    TriggerFactory(name="greetings", type="hello", url="https://hooks.example.com/hello")
    client = bearer(APIClient(), token("ada"))

    response = client.post(EVENTS_URL, {"type": "hello", "payload": {"name": "Ada"}}, format="json")

    assert response.status_code == 201, response.content
    [event] = response.json()["events"]
    assert (event["type"], event["trigger"]) == ("hello", "greetings")
    assert client.get(EVENTS_URL).status_code == 403  # ada holds no permission: a user, not admin


@pytest.mark.parametrize(("expires", "lifetime_s"), [("1h", 3600), ("30m", 1800), ("90", 90)])
def test_expires_sets_exp(expires, lifetime_s):
    User.objects.create_user("ada")
    claims = jwt.decode(token("ada", "--expires", expires), secret(), algorithms=["HS256"])
    assert claims["sub"] == "ada"
    assert claims["exp"] - claims["iat"] == lifetime_s


def test_never_leaves_exp_out():
    User.objects.create_user("ada")
    claims = jwt.decode(token("ada", "--expires", "never"), secret(), algorithms=["HS256"])
    assert "exp" not in claims


@pytest.mark.parametrize(
    ("setup", "args", "words"),
    [
        (None, ["nobody"], "No user 'nobody'"),
        ("inactive", ["ada"], "inactive"),
        ("user", ["ada", "--expires", "soon"], "--expires 'soon'"),
        ("user", ["ada", "--expires", "0"], "positive duration"),
    ],
)
def test_refusals_say_why(setup, args, words):
    if setup:
        User.objects.create_user("ada", is_active=setup != "inactive")
    with pytest.raises(CommandError, match=words):
        token(*args)


def test_refused_without_client_secrets():
    User.objects.create_user("ada")
    with (
        override_settings(EVENTING={"SECRETS": [webhook_secret()], "CLIENT_SECRETS": []}),
        pytest.raises(CommandError, match=r"CLIENT_SECRETS'\] is empty.*var/client-secret.txt"),
    ):
        token("ada")
