"""SSRF policy: which addresses a webhook may reach (public ones, plus ALLOWED_NETWORKS)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from eventing.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services: the classic SSRF prize, named so the remark says so.
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, …
    ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
    ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
}
# Carrier-grade NAT (RFC 6598): neither private nor global in `ipaddress`, never a webhook.
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# The well-known NAT64 prefix (RFC 6052): 64:ff9b::a.b.c.d is a.b.c.d through a NAT64 gateway.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedAddressError(Exception):
    """A webhook tried to reach an address the SSRF policy refuses.

    Deliberately not an OSError: urllib3 must not turn it into a retried connection error.
    """

    def __init__(self, address: str, reason: str) -> None:
        self.address, self.reason = address, reason
        super().__init__(
            f"Blocked: {address} is {reason}; webhooks may not reach it "
            "(EVENTING['ALLOWED_NETWORKS'] opts networks in)."
        )


def parse_address(address: str) -> IPAddress:
    """An address as `ipaddress` reads it, without a zone id and with IPv4-mapped unwrapped."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # ::ffff:127.0.0.1 reaches 127.0.0.1: judge it as the IPv4 address it is.
        return ip.ipv4_mapped
    return ip


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """EVENTING["ALLOWED_NETWORKS"] parsed (strict=False: 127.0.0.1/8 means 127.0.0.0/8)."""
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.ALLOWED_NETWORKS or []]


def embedded_ipv4(ip: IPAddress) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 one delivers to (6to4, NAT64, Teredo), with the scheme's name."""
    if ip.version != 6:
        return None
    if ip.sixtofour is not None:
        return "a 6to4 address", ip.sixtofour
    if ip in NAT64:
        return "a NAT64 address", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return "a Teredo address", ip.teredo[1]
    return None


def blocked_reason(address: str) -> str | None:
    """Why `address` may not be reached, in words; None when it may."""
    try:
        ip = parse_address(address)
    except ValueError:
        return "not an IP address"
    if any(ip.version == net.version and ip in net for net in allowed_networks()):
        return None
    embedded = embedded_ipv4(ip)
    if embedded:
        # 2002:a00:1:: reaches 10.0.0.1 through a relay: judge the IPv4 address it carries.
        scheme, ipv4 = embedded
        reason = blocked_reason(str(ipv4))
        if reason:
            return f"{scheme} carrying {ipv4}, {reason}"
        if ip in NAT64:
            # Not "reserved" (::/8) when it carries a public address: IPv6-only hosts behind
            # DNS64 reach every IPv4 webhook this way.
            return None
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.version == 4 and ip in CGNAT, "a carrier-grade NAT address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (not ip.is_global, "not a public address"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    return None


def check_peer(sock: socket.socket) -> None:
    """Refuse a connected socket whose peer is blocked (raises BlockedAddressError)."""
    address = sock.getpeername()[0]
    reason = blocked_reason(address)
    if reason:
        raise BlockedAddressError(address, reason)


def resolve(host: str, port: int | None = None) -> list[str]:
    """Every address `host` resolves to now (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port or 80, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({info[4][0] for info in infos})


def url_warning(url: str) -> str | None:
    """A warning when `url`'s host resolves to a blocked address today, else None.

    Only advice for the trigger form and the system check: the guard that counts runs on the
    address each delivery actually connects to, so DNS rebinding cannot slip past it.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    for address in resolve(host, port):
        reason = blocked_reason(address)
        if reason:
            return (
                f"{host} resolves to {address}, {reason}: deliveries to it will be refused "
                "unless EVENTING['ALLOWED_NETWORKS'] includes it."
            )
    return None
