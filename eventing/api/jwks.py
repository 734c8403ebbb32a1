"""Client-token keys published at JWKS URLs, fetched through the webhooks' SSRF guard.

Only the URLs in the settings are ever fetched (a token's `jku` or `x5u` header is ignored), each
through the same guarded connections as webhooks, so DNS pointing a configured host at an
internal address is refused too. A fetch is bounded in time and size and its keys are used for
EVENTING["CLIENT_JWKS_LIFESPAN_S"] in each process before the set is fetched again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKClientConnectionError
from urllib3 import Timeout

from eventing.conf import settings
from eventing.webhooks.client import Watchdog
from eventing.webhooks.request import http, read_bounded

logger = logging.getLogger(__name__)

# A JWKS holds a handful of keys; anything larger is not one (and must not fill memory).
MAX_JWKS_BYTES = 128 * 1024

_clients: dict[tuple[str, float, float], GuardedJWKClient] = {}
_clients_lock = threading.Lock()


class JWKSUnavailable(Exception):
    """No JWKS could be fetched, and none was cached."""


class GuardedJWKClient(PyJWKClient):
    """PyJWT's JWKS client, fetching through the SSRF-guarded, bounded webhook transport."""

    def fetch_data(self) -> Any:
        """The JWKS at `self.uri` as parsed JSON; PyJWKClientConnectionError naming why not."""
        try:
            return json.loads(fetch(self.uri, self.timeout))
        except PyJWKClientConnectionError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the fetch is a failed fetch
            raise PyJWKClientConnectionError(
                f"Could not fetch the JWKS at {self.uri}: {type(exc).__name__}: {exc}"
            ) from exc


def fetch(url: str, timeout_s: float) -> bytes:
    """GET `url` (no redirects, SSRF guard on every connection) within `timeout_s`; its body."""
    deadline = time.monotonic() + timeout_s
    with Watchdog(timeout_s):
        response = http().urlopen(
            "GET",
            url,
            headers={"Accept": "application/json", "User-Agent": settings.USER_AGENT},
            timeout=Timeout(connect=timeout_s, read=timeout_s),
            redirect=False,
            retries=False,
            preload_content=False,
        )
        try:
            if response.status != 200:
                raise PyJWKClientConnectionError(
                    f"Could not fetch the JWKS at {url}: HTTP {response.status}"
                )
            body, truncated = read_bounded(response, deadline, MAX_JWKS_BYTES)
        finally:
            response.close()
    if truncated:
        raise PyJWKClientConnectionError(
            f"Could not fetch the JWKS at {url}: larger than {MAX_JWKS_BYTES} bytes"
        )
    return body


def jwks_urls() -> list[str]:
    """EVENTING["CLIENT_JWKS_URLS"] plus the URLs listed in CLIENT_PUBLIC_KEYS."""
    urls = [url for url in settings.CLIENT_JWKS_URLS or [] if isinstance(url, str)]
    urls += [
        key.strip()
        for key in settings.CLIENT_PUBLIC_KEYS or []
        if isinstance(key, str) and key.strip().lower().startswith(("http://", "https://"))
    ]
    return urls


def url_problem(url: Any) -> str | None:
    """What makes `url` unusable as a JWKS URL (None when it is an absolute http(s) URL)."""
    if not isinstance(url, str):
        return "must be a URL string"
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    if parts.username or parts.password:
        return "must not hold credentials"
    return None


def client_for(url: str) -> GuardedJWKClient:
    """The process's client for `url` (its cache lives as long as the settings do)."""
    lifespan = float(settings.CLIENT_JWKS_LIFESPAN_S)
    timeout = float(settings.CLIENT_JWKS_TIMEOUT_S)
    key = (url, lifespan, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = GuardedJWKClient(url, lifespan=lifespan, timeout=timeout)
        return client


def signing_keys(token: str, algorithm: str) -> list[Any]:
    """The keys of the configured JWKS that may verify `token`: same `kid` (when it names one)
    and same algorithm. JWKSUnavailable when no set could be had at all."""
    kid = jwt.get_unverified_header(token).get("kid")
    keys: list[Any] = []
    failures = []
    urls = jwks_urls()
    for url in urls:
        try:
            jwk_set = client_for(url).get_jwk_set()
        except jwt.PyJWTError as exc:  # PyJWKClientError, or a set with no usable key
            logger.warning("Client JWKS unavailable: %s", exc)
            failures.append(url)
            continue
        keys += [jwk.key for jwk in jwk_set.keys if usable(jwk, kid, algorithm)]
    if urls and len(failures) == len(urls):
        raise JWKSUnavailable(", ".join(failures))
    return keys


def usable(jwk: PyJWK, kid: str | None, algorithm: str) -> bool:
    """A signing key for `algorithm`, with the token's `kid` when the token names one."""
    if jwk.public_key_use not in ("sig", None):
        return False
    if kid is not None and jwk.key_id != kid:
        return False
    return jwk.algorithm_name == algorithm
