"""The served schema and docs page, and the last-resort JSON 500."""

from __future__ import annotations

import pytest
import yaml

from eventing.api import views

pytestmark = pytest.mark.django_db


def test_schema_is_openapi_3_with_every_endpoint(anon):
    response = anon.get("/api/eventing/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    assert set(schema["paths"]) >= {
        "/v1/api/{project}/eventing/queue",
        "/api/eventing/events/",
        "/api/eventing/events/{id}/",
        "/api/eventing/events/{id}/cancel/",
        "/api/eventing/events/{id}/redeliver/",
        "/api/eventing/triggers/",
        "/api/eventing/triggers/{name}/",
        "/api/eventing/triggers/{name}/test/",
        "/api/eventing/event-types/",
        "/api/eventing/event-types/{name}/",
    }
    assert "bearerJWT" in schema["components"]["securitySchemes"]
    as_json = anon.get("/api/eventing/schema/?format=json")
    assert as_json.json()["info"]["title"] == "Eventing API"


def test_docs_page_is_interactive(anon):
    response = anon.get("/api/eventing/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"/api/eventing/schema/" in response.content


def test_unexpected_error_is_a_json_500_without_a_trace(anon, open_type, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views.queueing, "record", broken)
    response = anon.post("/api/eventing/events/", {"type": "order_placed"}, format="json")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "Internal error; it has been logged.",
    }
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content
    assert "Unexpected error in the eventing API" in caplog.text


def test_drf_authentication_class_is_reachable_from_eventing_verify():
    from eventing import verify
    from eventing.api.receiving import WebhookAuthentication

    assert verify.WebhookAuthentication is WebhookAuthentication
    with pytest.raises(AttributeError):
        verify.nothing_here  # noqa: B018
