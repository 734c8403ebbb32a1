"""Eventing settings: one `EVENTING` dict, defaults here, read when used."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # Secrets for the X-SC-Token JWT sent to webhooks. The first signs; every one verifies
    # (rotation: prepend). Receivers hold them, so they never authenticate an API caller.
    "SECRETS": [],
    # HS256/384/512 secrets that verify API bearer tokens (`Authorization: Bearer <jwt>`).
    # Never the same as SECRETS: a webhook receiver could then act as any user.
    "CLIENT_SECRETS": [],
    # Public keys (PEM strings) verifying RS256/ES256/EdDSA API bearer tokens; an http(s) URL
    # here is read as one more CLIENT_JWKS_URLS entry.
    "CLIENT_PUBLIC_KEYS": [],
    # JWKS URLs whose keys (matched by `kid` and `alg`) verify RS256/ES256/EdDSA API bearer
    # tokens; fetched through the webhooks' SSRF guard (ALLOWED_NETWORKS opts private hosts in).
    "CLIENT_JWKS_URLS": [],
    # How long a fetched JWKS is used before it is fetched again (seconds): a new key is
    # accepted at most this long after its issuer publishes it.
    "CLIENT_JWKS_LIFESPAN_S": 300,
    # Deadline for fetching a JWKS, connect to last byte (seconds); a slower one fails the token.
    "CLIENT_JWKS_TIMEOUT_S": 5,
    # How long past its lifespan a JWKS is still used while it cannot be fetched again (seconds);
    # requests never wait for a refresh meanwhile.
    "CLIENT_JWKS_STALE_S": 3600,
    # Optional private key (PEM) that signs X-SC-Token with RS256/ES256/EdDSA instead of HS256,
    # so receivers hold only the public key. Empty: HS256 with the first of SECRETS.
    "SIGNING_KEY": "",
    # Field names left out of DB event data unless a trigger lists them in payload_fields
    # (AbstractBaseUser.password is always left out by default too). Matched case-insensitively.
    "EXCLUDE_FIELDS": [
        "password",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "private_key",
        "otp_secret",
    ],
    # How many proxies in front of the web process append to X-Forwarded-For. 0 (default):
    # the header is ignored and throttles key on the connecting address.
    "NUM_PROXIES": 0,
    # Longest chain of follow-up events (a reply's `event`/`events` queuing more events) before
    # further follow-ups are dropped with a remark.
    "FOLLOW_UP_MAX_DEPTH": 5,
    # Most follow-up events one webhook reply may queue; the rest are dropped with a remark.
    "FOLLOW_UP_MAX_PER_REPLY": 10,
    # Most follow-up events the whole chain started by one event may record, across every
    # reply, retry and redelivery in it; the rest are dropped with a remark.
    "FOLLOW_UP_MAX_TOTAL": 100,
    # Environment variables a trigger's URL placeholders ({{NAME}}) and header `value_from_env`
    # may read: shell-style patterns, case-sensitive. Anyone who may change a trigger chooses
    # its receiver, so variables outside these (SECRET_KEY, DATABASE_URL…) are never sent.
    "TRIGGER_ENV": ["HOOK_*", "WEBHOOK_*"],
    # Largest JSON Schema an event type may hold (bytes of JSON).
    "MAX_SCHEMA_BYTES": 64 * 1024,
    # Time budget for validating one payload against its type's JSON Schema (milliseconds);
    # over it the request is refused with a 400 instead of holding a web process.
    "SCHEMA_VALIDATION_BUDGET_MS": 200,
    # Who we are: the JWT `id` claim and the CloudEvents `source`.
    "INSTANCE_ID": "eventing",
    # Database alias holding event_logs / invocation_logs / event_triggers / event_types /
    # eventing_heartbeats: PostgreSQL, or SQLite 3.35+ on one machine (eventing.E008). Another
    # alias than "default" needs eventing.router.EventingRouter in DATABASE_ROUTERS
    # (eventing.E007), and an event is then no longer in the transaction of the row it reports.
    "DATABASE": "default",
    # How DB events are captured: "signals" (post_save / post_delete, any database) or
    # "database" (PostgreSQL trigger functions write the event rows in the writing statement:
    # QuerySet.update(), bulk_create, raw SQL and other programs' writes are captured too).
    "CAPTURE": "signals",
    # Signal capture's reaction to writes it cannot see (QuerySet.update(), bulk_create,
    # bulk_update, raw SQL) on a model with DB triggers: "warn" (a RuntimeWarning naming the
    # model, the call and the triggers), "raise" (refused before it runs) or "ignore". None:
    # "warn" with DEBUG on and under Django's test runner or pytest-django, else "ignore" (a
    # production process then installs nothing). Database capture has no such gap.
    "MISSED_WRITES": None,
    # Events due within this many seconds get a Celery ETA message; later ones wait in the
    # table for the sweeper, so no ETA outlives the broker's visibility timeout.
    "ETA_HORIZON_S": 300,
    # How often beat runs the sweeper (seconds).
    "SWEEP_INTERVAL_S": 1,
    # Added to a trigger's timeout to form a delivery lease; a lease expired by this much more
    # also marks a staged row's message as lost.
    "LEASE_GRACE_S": 30,
    # Lifetime of the X-SC-Token JWT (seconds).
    "TOKEN_TTL_S": 1800,
    # Retries of a new trigger (attempts = retries + 1).
    "DEFAULT_RETRIES": 3,
    # Timeout of a new trigger's webhook call, covering connect and read (milliseconds).
    "DEFAULT_TIMEOUT_MS": 5000,
    # First retry delay of a new trigger; doubles per attempt (seconds).
    "BACKOFF_BASE_S": 5,
    # Longest retry delay of a new trigger, also the cap on Retry-After (seconds).
    "BACKOFF_MAX_S": 3600,
    # A trigger's open circuit tries its first probe event this long after opening; the wait
    # doubles after each failed probe (seconds).
    "CIRCUIT_PROBE_FIRST_S": 30,
    # Longest wait between two probes of an open circuit (seconds).
    "CIRCUIT_PROBE_MAX_S": 1800,
    # A trigger whose circuit counts failures without a success for this long is paused, with
    # the reason (seconds; 3 days). None never pauses.
    "DISABLE_AFTER_S": 3 * 24 * 3600,
    # CIDRs webhooks may reach although private or loopback, e.g. ["127.0.0.0/8"]. Keep empty
    # in production.
    "ALLOWED_NETWORKS": [],
    # Largest event payload accepted, in bytes of JSON.
    "MAX_PAYLOAD_BYTES": 1024 * 1024,
    # How much of a webhook's response body is read and kept (bytes).
    "MAX_RESPONSE_BYTES": 64 * 1024,
    # Days to keep finished rows, per status; None keeps them forever.
    "RETENTION": {"processed": 7, "failed": 30, "cancelled": 7},
    # URL prefix segment of the Space Cloud compatible queue endpoint (`/v1/api/<project>/…`).
    "QUEUE_PATH_PROJECT": "default",
    # How far ahead an event may be scheduled (seconds); later is refused.
    "MAX_SCHEDULE_AHEAD_S": 366 * 24 * 3600,
    # How long an `intent` row (file event) waits before the sweeper asks the storage.
    "INTENT_GRACE_S": 60,
    # User-Agent of webhook calls.
    "USER_AGENT": "Eventing/1.0 (+webhooks)",
    # Longest time one request transform may take to render, in milliseconds (a template
    # that runs over fails its attempt).
    "TRANSFORM_RENDER_MS": 250,
    # Address space of the child process that renders request transforms (MiB); a template
    # that needs more fails its attempt, and the child is replaced.
    "TRANSFORM_MEMORY_MB": 256,
    # Publish broker messages from a per-process background thread after commit, so a save()
    # never waits on the broker. False publishes inline in the on_commit callback.
    "PUBLISH_IN_BACKGROUND": True,
    # Most events of one trigger that one broker message carries (1 to 1,000). Rows published
    # together (a commit's; under load, every commit waiting for the publisher thread) go out
    # in messages of up to this many, each claimed in one statement and sent side by side; 1
    # sends one message per event.
    "DELIVERY_BATCH_SIZE": 50,
    # Threads per worker process that send a batch's webhooks side by side (the most calls of
    # batches in flight at once; single-event messages are sent by the task's own thread).
    "SENDER_THREADS": 64,
    # Under load (commits less than this apart) the publisher thread waits this long for more
    # commits, so they share batch messages; an isolated commit is published at once. 0 never
    # waits (milliseconds).
    "PUBLISH_LINGER_MS": 5,
    # How soon an event held back by its trigger's max_in_flight is tried again, without using
    # an attempt (seconds, ±50 % jitter).
    "THROTTLE_RECHECK_S": 0.25,
    # How long a process keeps its trigger index before reloading it (seconds).
    "TRIGGER_CACHE_TTL_S": 1.0,
    # Most events one API request may queue (a batch POST to /api/eventing/events/).
    "MAX_BATCH_SIZE": 1000,
    # DRF throttle rates of the HTTP API by scope, e.g. {"eventing_queue": "100/min"}; None
    # or a missing scope: no limit. Scopes: eventing_queue (queueing events), eventing (the
    # rest of the API).
    "THROTTLE_RATES": {"eventing_queue": None, "eventing": None},
    # The Django cache alias the throttles count in. It must be shared by every web process
    # (Redis or the database cache): a process-local one is warned by eventing.W008.
    "THROTTLE_CACHE": "default",
    # Port on which each Celery worker serves its own Prometheus metrics (all interfaces);
    # None serves nothing. Web processes serve theirs at /metrics (eventing.urls).
    "WORKER_METRICS_PORT": None,
    # Bearer token /metrics requires; empty leaves it open (restrict it at the proxy instead).
    "METRICS_TOKEN": "",
    # How long a link made by eventing.portal_url() may be opened, once, to start a portal
    # session (seconds).
    "PORTAL_LINK_MAX_AGE_S": 300,
    # How long a portal session opened by a link lasts before a new link is needed (seconds).
    "PORTAL_SESSION_MAX_AGE_S": 3600,
    # Who may show the owners' portal in a frame: CSP frame-ancestors sources, e.g.
    # ["'self'", "https://app.example.com"]; [] forbids every frame.
    "PORTAL_FRAME_ANCESTORS": ["'self'"],
    # SameSite of the portal's session cookie: "None" (sent over HTTPS only) when a site of
    # another domain frames the portal.
    "PORTAL_COOKIE_SAMESITE": "Lax",
    # /healthz reports the sweeper stale (503) when its last pass is older than this (seconds);
    # None means 10 sweep intervals, at least 10 s.
    "HEALTH_SWEEP_STALE_S": None,
    # A CRON trigger's tick first seen more than this long after its time was missed (beat was
    # down): it fires once late, or not at all if the trigger skips missed ticks (seconds).
    "CRON_MISSED_AFTER_S": 60,
    # The model owners' subscriptions belong to ("app_label.ModelName"); None: AUTH_USER_MODEL.
    # In most SaaS projects an organisation or account model.
    "OWNER_MODEL": None,
    # Dotted path of a function (request) -> owner instance or None that finds the owner of an
    # API or portal request; the default answers the request's user when authenticated.
    "OWNER_RESOLVER": "eventing.owners.request_user",
    # Most subscriptions one owner may have; creating one more is refused (400).
    "OWNER_MAX_SUBSCRIPTIONS": 20,
    # Most events per second delivered to each owner's subscription, across all workers (its
    # trigger's rate_limit); None: no limit.
    "SUBSCRIPTION_RATE_LIMIT": 50,
    # Most requests at once to each owner's subscription, across all workers: a slow endpoint
    # holds at most this many worker slots, so other owners' deliveries never wait behind it.
    "SUBSCRIPTION_MAX_IN_FLIGHT": 2,
    # How long a rotated signing secret (a trigger's or a subscription's) still signs beside
    # the new one, so receivers switch keys without dropping a delivery (seconds).
    "SECRET_ROTATION_GRACE_S": 24 * 3600,
}


@dataclass(frozen=True)
class Rule:
    """What a setting accepts; `doc` says it in words (errors and the docs' type column)."""

    doc: str
    accepts: Callable[[Any], bool]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _within(value: Any, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def whole(low: int | None = None, high: int | None = None, *, none: bool = False) -> Rule:
    """A whole number (never a bool), within the bounds given; None too if `none`."""
    bounds = f" between {low} and {high}" if high is not None else f" at least {low}"
    return Rule(
        "a whole number" + (bounds if low is not None else "") + (", or None" if none else ""),
        lambda v: (none and v is None) or (type(v) is int and _within(v, low, high)),
    )


def number(low: float = 0, *, above: bool = False, none: bool = False) -> Rule:
    """A number (int or float, never a bool) at least `low`, or above it; None too if `none`."""
    words = f"a number {'above' if above else 'at least'} {low:g}" + (", or None" if none else "")
    return Rule(
        words,
        lambda v: (none and v is None) or (_is_number(v) and (v > low if above else v >= low)),
    )


def text(*, empty: bool = True) -> Rule:
    """A string (non-empty unless `empty`)."""
    return Rule(
        "a string" if empty else "a non-empty string",
        lambda v: isinstance(v, str) and (empty or bool(v.strip())),
    )


def texts(check: Callable[[str], bool] = lambda _: True, doc: str = "strings") -> Rule:
    """A list (or tuple) of strings, each passing `check`."""
    return Rule(
        f"a list of {doc}",
        lambda v: isinstance(v, (list, tuple)) and all(isinstance(i, str) and check(i) for i in v),
    )


def choice(*values: str) -> Rule:
    """One of `values`."""
    return Rule("one of " + ", ".join(repr(v) for v in values), lambda v: v in values)


def mapping(value: Rule, keys: tuple[str, ...] | None = None) -> Rule:
    """A dict of string keys (only `keys`, when given) to values passing `value`."""
    named = f" with keys among {', '.join(keys)}" if keys else " of strings"
    return Rule(
        f"a dict{named} to {value.doc}",
        lambda v: (
            isinstance(v, dict)
            and all(isinstance(k, str) and (keys is None or k in keys) for k in v)
            and all(value.accepts(i) for i in v.values())
        ),
    )


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


# DRF's throttle rate: a count, a slash, and s/m/h/d (DRF reads the first letter only).
RATE_RE = re.compile(r"^\d+/[smhd]\w*\Z")


def _is_rate(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(RATE_RE.match(value)))


# A CSP source expression: a quoted keyword, or a scheme / host source without spaces,
# semicolons or commas (which would end the directive and let a value add another).
FRAME_SOURCE_RE = re.compile(r"^(?:'self'|'none'|[a-z][a-z0-9+.-]*:|[^\s;,']+)\Z")


def _is_frame_source(value: str) -> bool:
    return bool(FRAME_SOURCE_RE.match(value))


MODEL_LABEL_RE = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*\Z")
DOTTED_PATH_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+\Z")

FLAG = Rule("True or False", lambda v: isinstance(v, bool))
SECONDS = number(0)

# The type and accepted values of every key of DEFAULTS, checked when the settings are read: a
# wrong one is an ImproperlyConfigured naming the key (`manage.py check`: eventing.E004).
RULES: dict[str, Rule] = {
    "SECRETS": texts(),
    "CLIENT_SECRETS": texts(),
    "CLIENT_PUBLIC_KEYS": texts(),
    "CLIENT_JWKS_URLS": texts(),
    "CLIENT_JWKS_LIFESPAN_S": SECONDS,
    "CLIENT_JWKS_TIMEOUT_S": number(0, above=True),
    "CLIENT_JWKS_STALE_S": SECONDS,
    "SIGNING_KEY": text(),
    "EXCLUDE_FIELDS": texts(),
    "NUM_PROXIES": whole(0),
    "FOLLOW_UP_MAX_DEPTH": whole(0),
    "FOLLOW_UP_MAX_PER_REPLY": whole(0),
    "FOLLOW_UP_MAX_TOTAL": whole(0),
    "TRIGGER_ENV": texts(),
    "MAX_SCHEMA_BYTES": whole(1),
    "SCHEMA_VALIDATION_BUDGET_MS": number(0, above=True),
    "INSTANCE_ID": text(empty=False),
    "DATABASE": text(empty=False),
    "CAPTURE": choice("signals", "database"),
    "MISSED_WRITES": Rule(
        "one of 'warn', 'raise', 'ignore', or None",
        lambda v: v is None or v in ("warn", "raise", "ignore"),
    ),
    "ETA_HORIZON_S": SECONDS,
    "SWEEP_INTERVAL_S": number(0, above=True),
    "LEASE_GRACE_S": SECONDS,
    "TOKEN_TTL_S": whole(1),
    "DEFAULT_RETRIES": whole(0, 100),
    "DEFAULT_TIMEOUT_MS": whole(1, 300_000),
    "BACKOFF_BASE_S": SECONDS,
    "BACKOFF_MAX_S": SECONDS,
    "CIRCUIT_PROBE_FIRST_S": number(0, above=True),
    "CIRCUIT_PROBE_MAX_S": number(0, above=True),
    "DISABLE_AFTER_S": number(0, above=True, none=True),
    "ALLOWED_NETWORKS": texts(_is_cidr, "CIDRs (e.g. 10.0.0.0/8)"),
    "MAX_PAYLOAD_BYTES": whole(1),
    "MAX_RESPONSE_BYTES": whole(0),
    "RETENTION": mapping(whole(0, none=True), ("processed", "failed", "cancelled")),
    "QUEUE_PATH_PROJECT": text(empty=False),
    "MAX_SCHEDULE_AHEAD_S": number(0, above=True),
    "INTENT_GRACE_S": SECONDS,
    "USER_AGENT": text(empty=False),
    "TRANSFORM_RENDER_MS": number(0, above=True),
    "TRANSFORM_MEMORY_MB": whole(1),
    "PUBLISH_IN_BACKGROUND": FLAG,
    # A batch's rows share one statement: 1,000 keeps it within SQLite's parameter limit.
    "DELIVERY_BATCH_SIZE": whole(1, 1000),
    "SENDER_THREADS": whole(1),
    "PUBLISH_LINGER_MS": number(0),
    "THROTTLE_RECHECK_S": number(0, above=True),
    "TRIGGER_CACHE_TTL_S": SECONDS,
    "MAX_BATCH_SIZE": whole(1),
    "THROTTLE_RATES": mapping(Rule("a rate such as '100/min', or None", _is_rate)),
    "THROTTLE_CACHE": text(empty=False),
    "WORKER_METRICS_PORT": whole(1, 65535, none=True),
    "METRICS_TOKEN": text(),
    "PORTAL_LINK_MAX_AGE_S": number(0, above=True),
    "PORTAL_SESSION_MAX_AGE_S": number(0, above=True),
    "PORTAL_FRAME_ANCESTORS": texts(_is_frame_source, "CSP sources ('self', https://host)"),
    "PORTAL_COOKIE_SAMESITE": choice("Lax", "Strict", "None"),
    "HEALTH_SWEEP_STALE_S": number(0, above=True, none=True),
    "CRON_MISSED_AFTER_S": SECONDS,
    "OWNER_MODEL": Rule(
        'a model label "app_label.ModelName", or None',
        lambda v: v is None or (isinstance(v, str) and bool(MODEL_LABEL_RE.match(v))),
    ),
    "OWNER_RESOLVER": Rule(
        'a dotted path "module.function"',
        lambda v: isinstance(v, str) and bool(DOTTED_PATH_RE.match(v)),
    ),
    "OWNER_MAX_SUBSCRIPTIONS": whole(0),
    "SUBSCRIPTION_RATE_LIMIT": number(0, above=True, none=True),
    "SUBSCRIPTION_MAX_IN_FLIGHT": whole(1, 100_000),
    "SECRET_ROTATION_GRACE_S": SECONDS,
}

# Internal tuning knobs: the defaults fit most deployments, and the docs list them apart from
# the settings a project is expected to set.
TUNING = frozenset(
    {
        "CLIENT_JWKS_LIFESPAN_S",
        "CLIENT_JWKS_TIMEOUT_S",
        "CLIENT_JWKS_STALE_S",
        "SCHEMA_VALIDATION_BUDGET_MS",
        "CIRCUIT_PROBE_FIRST_S",
        "CIRCUIT_PROBE_MAX_S",
        "INTENT_GRACE_S",
        "TRANSFORM_RENDER_MS",
        "TRANSFORM_MEMORY_MB",
        "PUBLISH_IN_BACKGROUND",
        "DELIVERY_BATCH_SIZE",
        "SENDER_THREADS",
        "PUBLISH_LINGER_MS",
        "THROTTLE_RECHECK_S",
        "TRIGGER_CACHE_TTL_S",
        "CRON_MISSED_AFTER_S",
    }
)


class SettingValueError(ImproperlyConfigured):
    """A known EVENTING key holds a value of the wrong type or out of range."""

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        super().__init__(f'EVENTING["{key}"] must be {RULES[key].doc}, not {value!r}.')


def check_values(values: dict[str, Any]) -> None:
    """Raise SettingValueError for the first key whose value its rule refuses."""
    for key, value in values.items():
        if not RULES[key].accepts(value):
            raise SettingValueError(key, value)


class EventingSettings:
    """Attribute access to `settings.EVENTING` merged over `DEFAULTS`."""

    def __init__(self, user: dict[str, Any]) -> None:
        unknown = sorted(set(user) - set(DEFAULTS))
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown EVENTING setting(s): {', '.join(unknown)}. "
                f"Known keys: {', '.join(sorted(DEFAULTS))}."
            )
        check_values(user)
        self._values = {**DEFAULTS, **user}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"Unknown EVENTING setting {name!r}") from None


@cache
def get_settings() -> EventingSettings:
    """Return the merged settings, validated once and cached until settings change."""
    user = getattr(django_settings, "EVENTING", {}) or {}
    if not isinstance(user, dict):
        raise ImproperlyConfigured("EVENTING must be a dict.")
    return EventingSettings(user)


class _Proxy:
    """Module-level `settings` object that always reads the current cached settings."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_settings(), name)


settings = _Proxy()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    """Drop the cache when tests override EVENTING."""
    if setting == "EVENTING":
        get_settings.cache_clear()
