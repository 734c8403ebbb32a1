"""Secrets never reach invocation logs, event remarks or log output, whatever happens."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, InvocationLog
from eventing.webhooks.scrubbing import redact, secret_values
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


# A header secret with the characters JSON and URL encoders escape.
LITERAL_KEY = "lit/secret+key=0042"


def json_slashes(value: str) -> str:
    """What PHP's json_encode makes of a string: `/` escaped as `\\/`."""
    return json.dumps(value)[1:-1].replace("/", "\\/")


def json_unicode(value: str) -> str:
    """Every non-alphanumeric character as a `\\u00XX` escape (.NET, Go, hand-rolled)."""
    return "".join(c if c.isalnum() else f"\\u{ord(c):04X}" for c in value)


def html_entities(value: str) -> str:
    """Every non-alphanumeric character as an HTML character reference (error pages)."""
    return "".join(c if c.isalnum() else f"&#x{ord(c):x};" for c in value)


ENCODINGS = {
    "bare": lambda v: v,
    "JSON \\/": json_slashes,
    "JSON \\u00XX": json_unicode,
    "JSON in JSON": lambda v: json.dumps(json_slashes(v))[1:-1],
    "URL-encoded": lambda v: quote(v, safe=""),
    "URL-encoded twice": lambda v: quote(quote(v, safe=""), safe=""),
    "HTML entities": html_entities,
}


def echoed_values(request: bytes) -> dict[str, str]:
    """The credentials of a request, the way a careless receiver would pick them out."""
    head = request.split(b"\r\n\r\n")[0].decode()
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:])
    }
    return {
        "token without Bearer": headers["x-sc-token"].split()[1],
        "signature without v1,": headers["webhook-signature"].split(",", 1)[1],
        "literal header secret": headers["x-api-key"],
    }


def echo_encoded(conn, server) -> None:
    """Echo each credential in every encoding, in the body and in response headers."""
    request = read_request(conn)
    server.requests.append(request)
    values = echoed_values(request)
    body = "\n".join(
        f"{what} / {encoding}: {encode(value)}"
        for what, value in values.items()
        for encoding, encode in ENCODINGS.items()
    )
    headers = {
        "X-Echo-Token": values["token without Bearer"],
        "X-Echo-Signature": quote(values["signature without v1,"], safe=""),
        "X-Echo-Key": json_slashes(values["literal header secret"]),
    }
    server.send(conn, http_response(200, body.encode(), headers))


def stored_texts() -> dict[str, str]:
    """Every text an invocation or event row keeps, as stored (not re-encoded)."""
    texts = {}
    for row in InvocationLog.objects.all():
        texts["response body"] = row.response_body
        for name, value in row.response_headers.items():
            texts[f"response header {name}"] = f"{name}: {value}"
        texts["error"] = row.error_msg
        texts["request"] = json.dumps(row.request)
    for row in EventLog.objects.all():
        texts["remark"] = row.remark
    return texts


def deliver_one_to(server: RawServer) -> RawServer:
    """Deliver one event, with a literal credential header, to `server`; the server."""
    TriggerFactory(
        name="echoed",
        type="secret_test",
        url=server.url("/hook"),
        headers=[{"name": "X-Api-Key", "value": LITERAL_KEY}],
        retries=0,
    )
    [event] = emit("secret_test", {"hello": "world"})
    deliver_event(event.id)
    return server


@pytest.mark.django_db
def test_echoed_credentials_are_scrubbed_in_every_encoding(serve, caplog):
    """Token without its scheme, bare signature, header secret: JSON-escaped, URL-encoded…"""
    server = deliver_one_to(serve(echo_encoded))
    values = echoed_values(server.requests[0])
    assert values["literal header secret"] == LITERAL_KEY  # it really was sent and echoed
    texts = stored_texts()
    body = texts["response body"]
    assert body.count("[redacted]") == len(values) * len(ENCODINGS)  # each echo was one
    for where, text in {**texts, "log records": caplog.text}.items():
        for what, value in values.items():
            for encoding, encode in ENCODINGS.items():
                assert encode(value) not in text, f"{what} ({encoding}) appears in {where}"
            # Not even a recognisable piece of it.
            assert value[:12] not in text, f"the start of {what} appears in {where}"
            assert value[-12:] not in text, f"the end of {what} appears in {where}"


@pytest.mark.django_db
def test_a_secret_cut_by_the_body_limit_is_not_half_stored(serve, settings):
    """A secret running across MAX_RESPONSE_BYTES is redacted whole, not cut in two."""
    settings.EVENTING = {**settings.EVENTING, "MAX_RESPONSE_BYTES": 64}

    def echo_at_the_cut(conn, server) -> None:
        request = read_request(conn)
        server.requests.append(request)
        token = echoed_values(request)["token without Bearer"]
        server.send(conn, http_response(200, ("x" * 50 + json_unicode(token)).encode()))

    server = deliver_one_to(serve(echo_at_the_cut))
    token = echoed_values(server.requests[0])["token without Bearer"]
    row = InvocationLog.objects.get()
    assert row.response_body == "x" * 50 + "[redacted]"
    assert token[:10] not in row.response_body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token: abc/def+ghi=", "token: [redacted]"),
        ('{"t":"abc\\/def+ghi="}', '{"t":"[redacted]"}'),
        ("abc\\u002Fdef\\u002bghi\\u003d!", "[redacted]!"),
        ('"abc\\\\\\/def+ghi="', '"[redacted]"'),  # JSON in JSON
        ("q=abc%2Fdef%2Bghi%3D&x", "q=[redacted]&x"),
        ("q=abc%252Fdef%252Bghi%253D", "q=[redacted]"),
        ("<p>abc&#x2F;def&#43;ghi&#61;</p>", "<p>[redacted]</p>"),
        ("Bearer abc/def+ghi= and abc/def+ghi=", "[redacted] and [redacted]"),
        ("50% of abc\\/def plus \\n", "50% of abc\\/def plus \\n"),  # no secret: untouched
    ],
)
def test_redact_recognises_escaped_forms(text, expected):
    secrets = secret_values(["Bearer abc/def+ghi="])
    assert "abc/def+ghi=" in secrets  # the token without its scheme is a secret too
    assert redact(text, secrets) == expected


def test_redact_keeps_a_secret_across_the_cut_out_whole():
    secrets = secret_values(["v1,c2lnbmF0dXJlLzEyMw=="])
    assert redact("ok c2lnbmF0dXJlLzEyMw== tail", secrets, cut=8) == "ok [redacted]"
    assert redact("ok tail", secrets, cut=4) == "ok t"


def echo_split_and_reversed(conn, server) -> None:
    """Echo the token as its three JWT parts, reversed, and wrapped over lines."""
    request = read_request(conn)
    server.requests.append(request)
    token = echoed_values(request)["token without Bearer"]
    header, claims, signature = token.split(".")
    body = json.dumps(
        {
            "parts": [header, claims, signature],
            "reversed": token[::-1],
            "wrapped": "\n".join(token[i : i + 40] for i in range(0, len(token), 40)),
        }
    )
    server.send(conn, http_response(200, body.encode(), {"X-Echo-Sig": signature[::-1]}))


@pytest.mark.django_db
def test_split_and_reversed_echoes_of_the_token_are_scrubbed(serve):
    """Attack: a receiver echoed X-SC-Token split into its JWT parts, or reversed; the
    invocation log kept every piece, readable by the read-only operators."""
    server = deliver_one_to(serve(echo_split_and_reversed))
    token = echoed_values(server.requests[0])["token without Bearer"]
    stored = InvocationLog.objects.get()
    texts = [stored.response_body, json.dumps(stored.response_headers)]

    assert json.loads(stored.response_body)["parts"] == ["[redacted]"] * 3
    for text in texts:
        for form in (token, token[::-1]):
            for start in range(0, len(form) - 16):
                assert form[start : start + 16] not in text, (form[start : start + 16], text)
