"""Validation of triggers and event types, shared by the admin, the API and imports."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError

from . import types

ENV_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers we set ourselves; a trigger may not override them.
RESERVED_HEADERS = {
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "x-sc-token",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-eventing-attempt",
    "x-eventing-trigger",
}


# Apps whose models never emit DB events: ours (a loop) and Django's bookkeeping.
INTERNAL_APPS = {"eventing", "triggers", "contenttypes", "sessions", "admin", "migrations"}


def resolve_model(label: str):
    """Return the model class for `app_label.ModelName`, or None."""
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def model_field_names(model) -> list[str]:
    """Names of the concrete fields a DB payload holds for `model`."""
    return [f.name for f in model._meta.concrete_fields]


def storage_aliases() -> list[str]:
    """Aliases configured in settings.STORAGES."""
    return list(getattr(settings, "STORAGES", {}) or {})


def validate_url(url: str) -> None:
    """Refuse anything but an absolute http(s) URL (placeholders allowed)."""
    candidate = ENV_PLACEHOLDER_RE.sub("placeholder", url or "")
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(
            {"url": "Enter an absolute http:// or https:// URL (placeholders {{ENV_VAR}} allowed)."}
        )


def validate_headers(headers) -> None:
    """Headers are a list of {name, value} or {name, value_from_env}."""
    if not isinstance(headers, list):
        raise ValidationError({"headers": "Headers must be a list of objects."})
    for index, header in enumerate(headers):
        where = f"headers[{index}]"
        if not isinstance(header, dict) or not isinstance(header.get("name"), str):
            raise ValidationError({"headers": f"{where}: each header needs a string 'name'."})
        name = header["name"]
        if not HEADER_NAME_RE.match(name):
            raise ValidationError({"headers": f"{where}: {name!r} is not a valid header name."})
        if name.lower() in RESERVED_HEADERS:
            raise ValidationError({"headers": f"{where}: {name} is set by Eventing itself."})
        extra = set(header) - {"name", "value", "value_from_env"}
        if extra:
            raise ValidationError({"headers": f"{where}: unknown keys {sorted(extra)}."})
        has_value = isinstance(header.get("value"), str)
        has_env = isinstance(header.get("value_from_env"), str) and header["value_from_env"]
        if has_value == bool(has_env):
            raise ValidationError(
                {"headers": f"{where}: give exactly one of 'value' or 'value_from_env'."}
            )


def validate_field_list(value, field: str, allowed: list[str] | None) -> None:
    """A list of field names, each one the model has (when the model is known)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError({field: "Give a list of field names."})
    if allowed is not None:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise ValidationError(
                {
                    field: f"Unknown field(s) {', '.join(unknown)}; the model has "
                    f"{', '.join(allowed)}."
                }
            )


def validate_filter(value) -> None:
    """The filter is a flat object of dotted paths to a value, a list, or an operator object."""
    if not isinstance(value, dict):
        raise ValidationError({"filter": 'Give an object such as {"new.status": "paid"}.'})
    for path, expected in value.items():
        if not path or not all(path.split(".")):
            raise ValidationError({"filter": f"{path!r} is not a dotted path."})
        if isinstance(expected, dict):
            unknown = set(expected) - {"in", "not_in", "eq", "ne", "exists"}
            if unknown or not expected:
                raise ValidationError(
                    {"filter": f"{path}: operators are in, not_in, eq, ne, exists."}
                )


def validate_trigger(trigger) -> None:
    """Raise ValidationError naming the field for anything a trigger cannot work with."""
    event_type = trigger.type or ""
    if event_type in types.BUILTIN_TYPES:
        pass
    elif event_type.upper().startswith(types.RESERVED_PREFIXES):
        raise ValidationError(
            {"type": f"{event_type!r}: the DB_ and FILE_ prefixes are reserved for built-in types."}
        )
    elif not types.NAME_RE.match(event_type):
        raise ValidationError({"type": "Use only letters, digits and underscores."})

    model = None
    if types.is_db_type(event_type):
        model = resolve_model(trigger.source)
        if model is None:
            raise ValidationError(
                {"source": f"{trigger.source!r} is not an installed model (app_label.ModelName)."}
            )
        if model._meta.app_label in INTERNAL_APPS:
            raise ValidationError(
                {"source": "Eventing's own tables cannot have DB triggers (they would loop)."}
            )
        trigger.source = model._meta.label
    elif types.is_file_type(event_type):
        aliases = storage_aliases()
        if trigger.source not in aliases:
            raise ValidationError(
                {
                    "source": f"{trigger.source!r} is not a storage alias; choose one of "
                    f"{', '.join(aliases) or '(none configured)'}."
                }
            )
    elif trigger.source:
        raise ValidationError({"source": "Custom event triggers have no source; leave it blank."})

    validate_url(trigger.url)
    fields = model_field_names(model) if model else None
    validate_field_list(trigger.watch_fields, "watch_fields", fields)
    validate_field_list(trigger.payload_fields, "payload_fields", fields)
    if trigger.watch_fields and event_type != types.DB_UPDATE:
        raise ValidationError({"watch_fields": "Watched fields only apply to DB_UPDATE."})
    if trigger.payload_fields and not types.is_db_type(event_type):
        raise ValidationError({"payload_fields": "Payload fields only apply to DB types."})
    if trigger.path_pattern and not types.is_file_type(event_type):
        raise ValidationError({"path_pattern": "A path pattern only applies to FILE types."})
    validate_filter(trigger.filter)
    validate_headers(trigger.headers)
    if trigger.backoff_max_s < trigger.backoff_base_s:
        raise ValidationError({"backoff_max_s": "Must be at least the backoff base."})
    if not (trigger.signing_secret or "").startswith("whsec_"):
        raise ValidationError({"signing_secret": "Signing secrets start with whsec_."})


def validate_json_schema(schema) -> None:
    """Refuse a JSON Schema that is not itself valid."""
    if schema in (None, {}):
        return
    import jsonschema

    try:
        validator = jsonschema.validators.validator_for(schema)
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValidationError({"schema": f"Invalid JSON Schema at {path}: {exc.message}"}) from exc


def validate_event_type(event_type) -> None:
    """Event type names are custom names; the schema must be a valid JSON Schema."""
    if not types.is_custom_type(event_type.name or ""):
        raise ValidationError(
            {"name": "Use letters, digits and underscores, not starting with DB_ or FILE_."}
        )
    validate_json_schema(event_type.schema)
