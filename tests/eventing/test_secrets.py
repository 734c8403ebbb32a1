"""Secrets never reach invocation logs, event remarks or log output, whatever happens."""

from __future__ import annotations

import json
import logging

import pytest
from django.conf import settings as django_settings

from eventing import emit
from eventing.delivery import deliver_event
from eventing.models import EventLog, InvocationLog
from tests.factories import TriggerFactory
from tests.hostile import RawServer, dribble, http_response, read_request, reset

ENV_HEADER_VALUE = "envkey-7f3a9c1e5b0d"
URL_TOKEN = "urltoken-4d2b8e6f1a9c"
LITERAL_AUTH = "Bearer literal-secret-3e8a1f"


def echo(conn, server) -> None:
    """Answer with the whole request (headers and all) in the body and in a header."""
    request = read_request(conn)
    server.requests.append(request)
    head = request.split(b"\r\n\r\n")[0].decode()
    auth = next((line for line in head.split("\r\n") if line.lower().startswith("x-api-key")), "")
    server.send(conn, http_response(500, request, {"X-Echo": auth.split(":", 1)[-1].strip()}))


def bad_headers(conn, server) -> None:
    """A reply urllib3 cannot parse cleanly (it logs a warning quoting the URL)."""
    server.requests.append(read_request(conn))
    server.send(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n broken\r\n\r\n{}")


@pytest.fixture
def servers():
    started = {
        "echo": RawServer(echo),
        "reset": RawServer(reset),
        "slow": RawServer(dribble(b"HTTP/1.1 200 OK\r\n", interval_s=0.2)),
        "bad_headers": RawServer(bad_headers),
    }
    yield started
    for server in started.values():
        server.close()


@pytest.mark.django_db
def test_secrets_stay_out_of_logs_and_records(servers, monkeypatch, caplog, capsys):
    monkeypatch.setenv("HOOK_API_KEY", ENV_HEADER_VALUE)
    monkeypatch.setenv("HOOK_URL_TOKEN", URL_TOKEN)
    caplog.set_level(logging.DEBUG)  # urllib3 logs every URL at DEBUG
    headers = [
        {"name": "X-Api-Key", "value_from_env": "HOOK_API_KEY"},
        {"name": "Authorization", "value": LITERAL_AUTH},
    ]
    path = "/hook?token={{HOOK_URL_TOKEN}}"
    urls = {name: server.url(path) for name, server in servers.items()}
    urls["refused"] = "http://127.0.0.1:9" + path  # nothing listens on port 9
    urls["blocked"] = "http://10.255.255.1:80" + path  # private: refused by the SSRF guard
    triggers = [
        TriggerFactory(
            name=name, type="secret_test", url=url, headers=headers, retries=0, timeout_ms=600
        )
        for name, url in urls.items()
    ]
    events = emit("secret_test", {"hello": "world"})
    for event in events:
        deliver_event(event.id)

    # The secrets really were sent (else this test proves nothing) …
    sent = servers["echo"].requests[0].decode()
    assert ENV_HEADER_VALUE in sent
    assert URL_TOKEN in sent
    assert LITERAL_AUTH in sent
    sc_token = next(
        line.split(":", 1)[1].strip()
        for line in sent.split("\r\n")
        if line.lower().startswith("x-sc-token")
    )
    # … and none of them is stored or printed anywhere.
    secrets = {
        "env header": ENV_HEADER_VALUE,
        "url token": URL_TOKEN,
        "literal auth header": LITERAL_AUTH.split()[1],
        "X-SC-Token": sc_token.split()[1],
        "EVENTING SECRETS": django_settings.EVENTING["SECRETS"][0],
        **{f"signing secret of {t.name}": t.signing_secret for t in triggers},
    }
    stored = json.dumps(
        [list(InvocationLog.objects.values()), list(EventLog.objects.values())], default=str
    )
    captured = capsys.readouterr()
    outputs = {
        "stored rows": stored,
        "log records": caplog.text,
        "stdout": captured.out,
        "stderr": captured.err,
    }
    for where, text in outputs.items():
        for what, secret in secrets.items():
            assert secret not in text, f"{what} appears in {where}"
    # Each failure mode was exercised, and left a readable trace instead of the secret.
    assert InvocationLog.objects.count() == len(urls)
    remarks = dict(EventLog.objects.values_list("trigger_name", "remark"))
    assert "refused" in remarks["refused"]
    assert "Timed out" in remarks["slow"]
    assert "Blocked" in remarks["blocked"]
    echo_row = InvocationLog.objects.get(event__trigger_name="echo")
    assert "[redacted]" in echo_row.response_body
    assert echo_row.response_headers["X-Echo"] == "[redacted]"
    assert echo_row.request["url"] == servers["echo"].url(path)  # placeholders kept
    assert echo_row.request["headers"]["X-Api-Key"] == "[redacted]"
    assert echo_row.request["headers"]["Authorization"] == "[redacted]"
    assert "token=[redacted]" in caplog.text  # urllib3's URL log lines were scrubbed
