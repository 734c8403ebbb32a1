"""The SSRF guard: blocked addresses are refused on the address actually connected to."""

from __future__ import annotations

import socket

import pytest
from django.core.checks import run_checks

from eventing import emit
from eventing.checks import check_trigger_urls
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus
from eventing.webhooks import ssrf
from eventing.webhooks.request import WebhookRequest, send
from tests.factories import TriggerFactory
from tests.hostile import RawServer, http_response, reply
from tests.waiting import wait_until

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("192.0.2.10", "private"),  # TEST-NET-1, documentation only
    ("198.18.0.1", "private"),  # benchmarking
    ("2002:7f00:1::", "6to4 address carrying 127.0.0.1, a loopback"),
    ("2002:a00:1::1", "6to4 address carrying 10.0.0.1, a private"),
    ("2002:a9fe:a9fe::", "6to4 address carrying 169.254.169.254, a cloud metadata"),
    ("64:ff9b::7f00:1", "NAT64 address carrying 127.0.0.1, a loopback"),
    ("64:ff9b::c0a8:101", "NAT64 address carrying 192.168.1.1, a private"),
    ("2001:0:808:808::f5ff:fffe", "Teredo address carrying 10.0.0.1, a private"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo: public client, still not
    ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
    ("::ffff:0:7f00:1", "reserved"),  # IPv4-translated
]
PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 of a public address
    "64:ff9b::808:808",  # NAT64 of a public address: how IPv6-only hosts reach IPv4 webhooks
]


@pytest.fixture
def no_allowed_networks(settings):
    """Production policy: nothing private is opted in."""
    settings.EVENTING = {**settings.EVENTING, "ALLOWED_NETWORKS": []}


@pytest.mark.usefixtures("no_allowed_networks")
@pytest.mark.parametrize(("address", "kind"), BLOCKED)
def test_blocked_addresses(address, kind):
    reason = ssrf.blocked_reason(address)
    assert reason is not None
    assert kind in reason


@pytest.mark.usefixtures("no_allowed_networks")
@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert ssrf.blocked_reason(address) is None


def test_allowed_networks_opt_in(settings):
    settings.EVENTING = {**settings.EVENTING, "ALLOWED_NETWORKS": ["127.0.0.0/8", "10.9.0.0/16"]}
    assert ssrf.blocked_reason("127.0.0.1") is None
    assert ssrf.blocked_reason("::ffff:127.0.0.2") is None  # mapped: judged as IPv4
    assert ssrf.blocked_reason("10.9.1.1") is None
    assert "private" in ssrf.blocked_reason("10.8.1.1")
    assert "metadata" in ssrf.blocked_reason("169.254.169.254")
    assert "loopback" in ssrf.blocked_reason("::1")  # IPv6 loopback is not in 127/8


@pytest.fixture
def target():
    """A real HTTP server on 127.0.0.1 that must never be reached by a blocked call."""
    server = RawServer(reply(http_response(200, b'{"ok": true}')))
    yield server
    server.close()


@pytest.fixture
def closed_port():
    """A loopback port with a socket bound and not listening: a connect() there is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def accepted_before_probe(server: RawServer) -> int:
    """How many connections `server` accepted before a probe connection opened now.

    The kernel hands connections to accept() in arrival order, so once the probe's request is
    in, every earlier connection (even one closed without a byte) has been counted.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as probe:
        probe.sendall(b"PROBE / HTTP/1.1\r\n\r\n")
        wait_until(
            lambda: any(r.startswith(b"PROBE") for r in server.requests),
            timeout_s=5,
            message="the probe connection to be accepted",
        )
    return server.connections - 1


def request_to(url: str) -> WebhookRequest:
    return WebhookRequest(
        url=url,
        headers={"Content-Type": "application/json"},
        body=b"{}",
        redacted_headers={},
        logged_url=url,
    )


@pytest.mark.usefixtures("no_allowed_networks")
@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",  # decimal
        "0x7f000001",  # hex
        "0x7f.0.0.1",  # dotted hex
        "0177.0.0.1",  # octal
        "017700000001",  # octal, one number
        "127.1",  # short form
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
    ],
)
def test_loopback_spellings_are_refused_at_connect(target, host):
    if host == "[::ffff:127.0.0.1]" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    response = send(request_to(f"http://{host}:{target.port}/"), timeout_s=2)
    assert response.blocked
    assert not response.ok
    assert "loopback" in response.error
    assert "ALLOWED_NETWORKS" in response.error
    assert target.requests == []  # not one byte of the request reached the server


def test_allowed_loopback_goes_through(target):
    response = send(request_to(f"http://localhost:{target.port}/"), timeout_s=2)
    assert response.ok, response.error
    assert not response.blocked
    assert len(target.requests) == 1


@pytest.mark.usefixtures("no_allowed_networks")
def test_dns_rebinding_is_caught_on_the_connected_address(target, monkeypatch):
    """The name looks public when checked, then resolves to loopback when connecting."""
    real_getaddrinfo = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1", "127.0.0.1"])

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            return real_getaddrinfo(next(answers), port, *args, **kwargs)
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.example:{target.port}/"
    assert ssrf.url_warning(url) is None  # a check at save time would have let it through
    response = send(request_to(url), timeout_s=2)
    assert response.blocked
    assert "127.0.0.1 is a loopback address" in response.error
    assert target.requests == []


@pytest.mark.django_db
@pytest.mark.usefixtures("no_allowed_networks")
def test_blocked_delivery_fails_at_once_without_retry(target):
    trigger = TriggerFactory(retries=5, url=f"http://127.0.0.1:{target.port}/hook")
    [event] = emit("order_placed", {"n": 1})
    result = deliver_event(event.id)
    assert result.response.blocked
    row = EventLog.objects.get(id=event.id)
    assert row.status == EventStatus.FAILED
    assert row.attempts == 1  # no retry although five are allowed
    assert "loopback" in row.remark
    assert "Blocked" in row.remark
    invocation = row.invocations.get()
    assert "loopback" in invocation.error_msg
    assert invocation.response_status_code is None
    assert EventLog.objects.filter(type=f"dlq_{trigger.name}").count() == 0  # no dlq trigger
    assert target.requests == []


def test_redirects_are_not_followed():
    landed = RawServer(reply(http_response(200, b"{}")))
    redirect = RawServer(reply(http_response(302, b"", {"Location": landed.url("/")})))
    try:
        response = send(request_to(redirect.url("/")), timeout_s=2)
        assert response.status_code == 302
        assert not response.ok
        assert landed.connections == 0
    finally:
        landed.close()
        redirect.close()


@pytest.mark.django_db
@pytest.mark.usefixtures("no_allowed_networks")
def test_system_check_warns_about_triggers_resolving_to_blocked_addresses():
    TriggerFactory(name="internal", url="http://localhost:8000/hook")
    TriggerFactory(name="disabled_one", url="http://10.0.0.1/hook", enabled=False)
    TriggerFactory(name="with_env", url="http://{{NOT_SET_ANYWHERE_42}}/hook")
    warnings = check_trigger_urls(databases=["default"])
    assert [w.id for w in warnings] == ["eventing.W003"]
    assert "internal" in warnings[0].msg
    assert "loopback" in warnings[0].msg


@pytest.mark.django_db
@pytest.mark.usefixtures("no_allowed_networks")
def test_the_trigger_url_check_reads_the_database_only_when_databases_are_checked():
    TriggerFactory(name="internal", url="http://localhost:8000/hook")
    # A plain `manage.py check` (and every runserver start) runs no query for it ...
    assert "eventing.W003" not in [m.id for m in run_checks()]
    # ... `check --database` and `migrate` do.
    assert "eventing.W003" in [m.id for m in run_checks(databases=["default"])]


@pytest.mark.django_db
def test_system_check_quiet_when_network_allowed():
    TriggerFactory(name="internal", url="http://localhost:8000/hook")
    assert check_trigger_urls(databases=["default"]) == []


@pytest.mark.usefixtures("no_allowed_networks")
def test_url_warning_for_the_trigger_form():
    assert "loopback" in ssrf.url_warning("http://127.0.0.1/x")
    assert "metadata" in ssrf.url_warning("http://169.254.169.254/latest/meta-data/")
    assert ssrf.url_warning("http://93.184.216.34/") is None
    assert ssrf.url_warning("not a url") is None


@pytest.mark.usefixtures("no_allowed_networks")
def test_https_is_refused_before_connecting(target):
    response = send(request_to(target.url("/", scheme="https")), timeout_s=2)
    assert response.blocked
    assert "loopback" in response.error
    assert accepted_before_probe(target) == 0  # not even a TCP handshake, let alone TLS


@pytest.mark.django_db
@pytest.mark.usefixtures("no_allowed_networks")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_open_and_closed_ports_behind_a_blocked_address_look_alike(target, closed_port, host):
    """Refused before connecting: no remark, error or timing tells an open port from a closed
    one, so webhooks cannot scan the internal network."""
    TriggerFactory(name="open_port", url=f"http://{host}:{target.port}/hook", retries=3)
    TriggerFactory(name="closed_port", url=f"http://{host}:{closed_port}/hook", retries=3)
    [first, second] = emit("order_placed", {"n": 1})
    for event in (first, second):
        assert deliver_event(event.id).response.blocked
    rows = {row.trigger_name: row for row in EventLog.objects.all()}
    remarks = {name: row.remark for name, row in rows.items()}
    errors = {name: row.invocations.get().error_msg for name, row in rows.items()}
    assert remarks["open_port"] == remarks["closed_port"]
    assert errors["open_port"] == errors["closed_port"]
    assert "loopback address" in remarks["open_port"]
    assert {row.status for row in rows.values()} == {EventStatus.FAILED}  # not retried either
    assert accepted_before_probe(target) == 0


@pytest.mark.usefixtures("no_allowed_networks")
def test_peer_recheck_refuses_with_the_same_text(target):
    """The check after connecting (kept as a second line) words its refusal like the first."""
    refused = send(request_to(f"http://127.0.0.1:{target.port}/"), timeout_s=2)
    with (
        socket.create_connection(("127.0.0.1", target.port), timeout=5) as sock,
        pytest.raises(ssrf.BlockedAddressError) as caught,
    ):
        ssrf.check_peer(sock)
    assert str(caught.value) == refused.error


def test_only_the_allowed_addresses_of_a_name_are_connected_to(monkeypatch, settings):
    """A name resolving to a blocked and an allowed address: the blocked one is skipped."""
    settings.EVENTING = {**settings.EVENTING, "ALLOWED_NETWORKS": ["127.0.0.2/32"]}
    listening = RawServer(reply(http_response(200, b"{}")))  # on 127.0.0.1: blocked now
    real_getaddrinfo = socket.getaddrinfo
    tried = []

    def two_answers(host, port, *args, **kwargs):
        if host != "mixed.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        tried.append(host)
        return [
            *real_getaddrinfo("127.0.0.1", port, socket.AF_INET, socket.SOCK_STREAM),
            *real_getaddrinfo("127.0.0.2", port, socket.AF_INET, socket.SOCK_STREAM),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    try:
        response = send(request_to(f"http://mixed.example:{listening.port}/"), timeout_s=2)
        assert tried
        # 127.0.0.2 was tried (nothing listens there on this port: refused), 127.0.0.1 never.
        assert not response.blocked
        assert "refused" in response.error.lower()
        assert accepted_before_probe(listening) == 0
    finally:
        listening.close()
