"""Eventing settings: one `EVENTING` dict, defaults here, read when used."""

from __future__ import annotations

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
    # /healthz reports the sweeper stale (503) when its last pass is older than this (seconds);
    # None means 10 sweep intervals, at least 10 s.
    "HEALTH_SWEEP_STALE_S": None,
    # A CRON trigger's tick first seen more than this long after its time was missed (beat was
    # down): it fires once late, or not at all if the trigger skips missed ticks (seconds).
    "CRON_MISSED_AFTER_S": 60,
}


class EventingSettings:
    """Attribute access to `settings.EVENTING` merged over `DEFAULTS`."""

    def __init__(self, user: dict[str, Any]) -> None:
        unknown = sorted(set(user) - set(DEFAULTS))
        if unknown:
            raise ImproperlyConfigured(
                f"Unknown EVENTING setting(s): {', '.join(unknown)}. "
                f"Known keys: {', '.join(sorted(DEFAULTS))}."
            )
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
