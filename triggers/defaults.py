"""Defaults of new triggers, read from `settings.EVENTING` when a trigger is created.

`triggers` imports nothing from `eventing`, so the fallbacks repeat `eventing.conf.DEFAULTS`;
a test keeps the two equal.
"""

import base64
import fnmatch
import secrets

from django.conf import settings

FALLBACKS = {
    "DEFAULT_RETRIES": 3,
    "DEFAULT_TIMEOUT_MS": 5000,
    "BACKOFF_BASE_S": 5,
    "BACKOFF_MAX_S": 3600,
    "MAX_SCHEMA_BYTES": 64 * 1024,
    "TRIGGER_ENV": ["HOOK_*", "WEBHOOK_*"],
}


def _setting(key: str):
    return (getattr(settings, "EVENTING", None) or {}).get(key, FALLBACKS[key])


def default_retries() -> int:
    """EVENTING["DEFAULT_RETRIES"]."""
    return _setting("DEFAULT_RETRIES")


def default_timeout_ms() -> int:
    """EVENTING["DEFAULT_TIMEOUT_MS"]."""
    return _setting("DEFAULT_TIMEOUT_MS")


def default_backoff_base_s() -> float:
    """EVENTING["BACKOFF_BASE_S"]."""
    return float(_setting("BACKOFF_BASE_S"))


def default_backoff_max_s() -> float:
    """EVENTING["BACKOFF_MAX_S"]."""
    return float(_setting("BACKOFF_MAX_S"))


def max_schema_bytes() -> int:
    """EVENTING["MAX_SCHEMA_BYTES"]: largest JSON Schema an event type may hold."""
    return int(_setting("MAX_SCHEMA_BYTES"))


def trigger_env() -> list[str]:
    """EVENTING["TRIGGER_ENV"]: patterns of the environment variables triggers may read."""
    return list(_setting("TRIGGER_ENV"))


def env_readable(name: str) -> bool:
    """May a trigger's URL placeholder or `value_from_env` read environment variable `name`?

    Whoever may change a trigger chooses where it sends: without this bound a `{{SECRET_KEY}}`
    in a URL would carry the project's own secrets to any receiver.
    """
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in trigger_env())


def new_signing_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
