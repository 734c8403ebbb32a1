"""Client-token keys published at JWKS URLs, fetched through the webhooks' SSRF guard.

Only the URLs in the settings are ever fetched (a token's `jku` or `x5u` header is ignored), each
through the same guarded connections as webhooks, so DNS pointing a configured host at an
internal address is refused too. A fetch is bounded in time and size and its keys are used for
EVENTING["CLIENT_JWKS_LIFESPAN_S"] in each process before the set is fetched again (KeySet:
one fetch at a time, failures backed off, stale keys served while refreshing).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt import PyJWK, PyJWKClientConnectionError, PyJWKSet
from urllib3 import Timeout

from eventing.conf import settings
from eventing.webhooks.client import Watchdog
from eventing.webhooks.request import http, read_bounded

logger = logging.getLogger(__name__)

# A JWKS holds a handful of keys; anything larger is not one (and must not fill memory).
MAX_JWKS_BYTES = 128 * 1024

# After a failed fetch, none again for this long, doubling per failure up to the max (seconds).
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0

_clients: dict[tuple[str, float, float, float], KeySet] = {}
_clients_lock = threading.Lock()


class JWKSUnavailable(Exception):
    """No JWKS could be fetched, and none was cached."""


class KeySet:
    """One JWKS URL's keys in this process.

    A slow or failing endpoint must not hold requests: one fetch at a time (single flight; the
    others wait for it only when no keys are held yet), a failed fetch is not retried before a
    back-off (RETRY_FIRST_S doubling to RETRY_MAX_S; meanwhile requests fail at once), and keys
    past their lifespan are served while one background fetch refreshes them (for at most
    EVENTING["CLIENT_JWKS_STALE_S"] more, so a key removed from the set stops working).
    """

    def __init__(self, url: str, lifespan_s: float, timeout_s: float, stale_s: float) -> None:
        self.url = url
        self.lifespan_s = lifespan_s
        self.timeout_s = timeout_s
        self.stale_s = stale_s
        self.fetches = 0  # fetches started, for metrics and tests
        self.waiting = 0  # requests waiting for the first fetch
        self._cond = threading.Condition()
        self._keys: PyJWKSet | None = None
        self._fetched_at = 0.0
        self._fetching = False
        self._failures = 0
        self._retry_at = 0.0
        self._error = ""

    def get(self) -> PyJWKSet:
        """The keys: cached, stale while refreshing, or fetched now; PyJWKClientConnectionError."""
        with self._cond:
            now = time.monotonic()
            age = now - self._fetched_at
            if self._keys is not None and age >= self.lifespan_s + self.stale_s:
                self._keys = None  # too old to trust while the endpoint cannot be reached
            if self._keys is not None:
                if age >= self.lifespan_s and not self._fetching and now >= self._retry_at:
                    self._begin_fetch()
                    threading.Thread(
                        target=self._fetch, name="eventing-jwks-refresh", daemon=True
                    ).start()
                return self._keys
            if self._fetching:
                return self._wait_for_fetch()
            if now < self._retry_at:
                raise PyJWKClientConnectionError(
                    f"{self._error} (not fetched again for {self._retry_at - now:.0f} s)"
                )
            self._begin_fetch()
        self._fetch()
        with self._cond:
            if self._keys is None:
                raise PyJWKClientConnectionError(self._error)
            return self._keys

    def _begin_fetch(self) -> None:
        self._fetching = True
        self.fetches += 1

    def _wait_for_fetch(self) -> PyJWKSet:
        """Wait (lock held) for the fetch under way, at most its own deadline."""
        self.waiting += 1
        try:
            deadline = time.monotonic() + self.timeout_s + 1
            while self._fetching:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PyJWKClientConnectionError(f"The JWKS at {self.url} is still loading")
                self._cond.wait(left)
        finally:
            self.waiting -= 1
        if self._keys is None:
            raise PyJWKClientConnectionError(self._error)
        return self._keys

    def _fetch(self) -> None:
        """Fetch the set; keep it, or note the failure and when to try again."""
        try:
            keys = PyJWKSet.from_dict(json.loads(fetch(self.url, self.timeout_s)))
        except Exception as exc:  # noqa: BLE001 - any failure of the fetch is a failed fetch
            error = (
                str(exc)
                if isinstance(exc, PyJWKClientConnectionError)
                else (f"Could not fetch the JWKS at {self.url}: {type(exc).__name__}: {exc}")
            )
            logger.warning("Client JWKS unavailable: %s", error)
            with self._cond:
                self._failures += 1
                backoff = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (self._failures - 1))
                self._retry_at = time.monotonic() + backoff
                self._error = error
                self._fetching = False
                self._cond.notify_all()
            return
        with self._cond:
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._failures = 0
            self._retry_at = 0.0
            self._fetching = False
            self._cond.notify_all()


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


def client_for(url: str) -> KeySet:
    """The process's key set for `url` (its cache lives as long as the settings do)."""
    lifespan = float(settings.CLIENT_JWKS_LIFESPAN_S)
    timeout = float(settings.CLIENT_JWKS_TIMEOUT_S)
    stale = float(settings.CLIENT_JWKS_STALE_S)
    key = (url, lifespan, timeout, stale)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = KeySet(url, lifespan, timeout, stale)
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
            jwk_set = client_for(url).get()
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
