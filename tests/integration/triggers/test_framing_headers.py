"""A trigger may not set hop-by-hop or framing headers, in any spelling, literal or templated."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db

NAMES = [
    "Transfer-Encoding",
    "transfer-encoding",
    "Connection",
    "Upgrade",
    "Expect",
    "Cookie",
    "HOST",
    "Content-Length",
    "TE",
    "Keep-Alive",
]


@pytest.mark.parametrize("name", NAMES)
def test_framing_headers_are_refused_as_header_templates(name):
    """Attack: a header template `Transfer-Encoding: identity` desynchronised the receiver;
    `Cookie`, `Host`, `Upgrade`, `Expect` and `Connection` were accepted as well."""
    trigger = TriggerFactory.build(transform_headers={name: "identity"})

    with pytest.raises(ValidationError) as caught:
        trigger.full_clean()

    assert name in caught.value.message_dict["transform_headers"][0]


@pytest.mark.parametrize("name", NAMES)
def test_framing_headers_are_refused_as_literal_headers(name):
    trigger = TriggerFactory.build(headers=[{"name": name, "value": "x"}])

    with pytest.raises(ValidationError) as caught:
        trigger.full_clean()

    assert name in caught.value.message_dict["headers"][0]


def test_a_templated_authorization_beside_send_authorization_is_refused(admin_client):
    """Attack: a lowercase `authorization` header template beside send_authorization sent two
    Authorization headers, the receiver picking either."""
    body = {
        "name": "double_auth",
        "type": "order_placed",
        "url": "https://example.com/hook",
        "send_authorization": True,
        "transform_headers": {"authorization": "Bearer {{ data.token }}"},
    }

    reply = admin_client.post("/api/eventing/triggers/", body, content_type="application/json")

    assert reply.status_code == 400
    assert "transform_headers" in reply.json()["fields"]
    ok = admin_client.post(
        "/api/eventing/triggers/",
        {**body, "send_authorization": False},
        content_type="application/json",
    )
    assert ok.status_code == 201, ok.content
