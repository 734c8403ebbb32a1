"""The transform preview shows a person only what that person may see: no environment value,
no other trigger's events, no header value; malformed input is a 400 naming the field."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User

from tests.factories import TriggerFactory
from tests.support.mission_control import make_event
from triggers.masking import MASK

pytestmark = pytest.mark.django_db

PREVIEW = "/mission-control/triggers/trigger/preview/"
SECRET = "postgres://app:hunter2-very-secret@db.internal/app"


def post(client, body):
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(PREVIEW, raw, content_type="application/json")


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_preview_never_shows_environment_values(client, monkeypatch):
    """Attack: a user with only add_trigger puts `{{DATABASE_URL}}` in the URL and echoes
    `base_url` into the URL, a header and the body; the preview showed the resolved value."""
    monkeypatch.setenv("HOOK_PREVIEW_DATABASE_URL", SECRET)
    client.force_login(staff("add_trigger"))
    fields = {
        "url": "https://hooks.example.com/in?db={{HOOK_PREVIEW_DATABASE_URL}}",
        "transform_url": "{{ base_url }}&again=1",
        "transform_headers": '{"X-Echo": "{{ base_url }}"}',
        "transform_body": '{"echo": {{ base_url | tojson }}}',
    }

    response = post(client, {"fields": fields, "sample": '{"n": 1}'})

    assert response.status_code == 200
    reply = response.json()
    assert "error" not in reply, reply
    assert "hunter2" not in response.content.decode()
    assert reply["url"].startswith("https://hooks.example.com/in?db={{HOOK_PREVIEW_DATABASE_URL}}")
    assert reply["headers"]["X-Echo"].endswith("{{HOOK_PREVIEW_DATABASE_URL}}")
    assert json.loads(reply["body"])["echo"].endswith("{{HOOK_PREVIEW_DATABASE_URL}}")


def test_preview_renders_only_what_the_user_may_view(client):
    """Attack: a user with add_trigger (403 on the trigger's page and on event logs) previews
    another trigger by id and reads its latest event's payload and its header values."""
    other = TriggerFactory(
        url="https://h.example.com/",
        headers=[{"name": "X-Api-Code", "value": "literal-credential-123"}],
    )
    make_event(other, payload={"card": "4111-1111-1111-1111"})
    fields = {"transform_body": "{{ data | tojson }}"}
    client.force_login(staff("add_trigger"))

    assert post(client, {"trigger": other.pk, "fields": fields}).status_code == 403

    viewer = staff("add_trigger", "view_trigger")
    client.force_login(viewer)
    reply = post(client, {"trigger": other.pk, "fields": fields}).json()
    assert "4111" not in json.dumps(reply)  # the latest event needs view_eventlog
    assert reply["event"] == "an empty payload"
    assert reply["headers"]["X-Api-Code"] == MASK

    viewer.user_permissions.add(Permission.objects.get(codename="view_eventlog"))
    client.force_login(User.objects.get(pk=viewer.pk))
    reply = post(client, {"trigger": other.pk, "fields": fields}).json()
    assert json.loads(reply["body"]) == {"card": "4111-1111-1111-1111"}
    assert reply["headers"]["X-Api-Code"] == MASK


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fields": {"url": ["https://a.example.com/"]}}, "fields.url"),
        ({"fields": {"url": None, "transform_body": 5}}, "fields.transform_body"),
        ({"fields": ["url"]}, "fields"),
        ({"fields": {"transform_headers": "[1, 2]"}}, "fields.transform_headers"),
        ({"fields": {}, "sample": "[" * 100_000 + "]" * 100_000}, "sample"),
        ({"fields": {}, "sample": {"n": 1}}, "sample"),
        ({"trigger": {"pk": 1}}, "trigger"),
        ([1, 2], "JSON object"),
    ],
)
def test_malformed_preview_input_is_a_400_naming_the_field(admin_client, body, field):
    """Attack: `url` a list or null, a deeply nested sample, a sample that is not text: 500s."""
    response = post(admin_client, body)

    assert response.status_code == 400
    assert field in response.json()["error"]
