"""Validation of triggers and event types, shared by the admin, the API and imports."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import urlsplit

from croniter import croniter
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.module_loading import import_string

from . import defaults, fields, schedule, templating, types

# The schema rules live in triggers.schemas; these names are imported from here too.
from .schemas import MAX_SCHEMA_DEPTH, SchemaProblem, json_depth, schema_problem  # noqa: F401

ENV_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# RFC 9110 token; \Z, not $, which would let "Host\n" through.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# A payload path: dot-separated keys of letters, digits, `_` and `-` (e.g. new.customer_id).
ORDERING_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")
# Standard Webhooks secrets: whsec_ + base64 of 24 to 64 random bytes.
SECRET_BYTES = (24, 64)
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

# Checks other apps add for DB triggers (eventing's database capture refuses models it cannot
# serve): each is called with the trigger and its model and raises ValidationError.
DB_SOURCE_CHECKS: list = []


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


def emits_file_events(alias: str) -> bool:
    """Whether STORAGES[alias] is an EventingStorage, the only storage whose saves and deletes
    emit file events (it marks itself with `emits_file_events`; triggers never import it)."""
    conf = (getattr(settings, "STORAGES", {}) or {}).get(alias) or {}
    try:
        backend = import_string(conf.get("BACKEND", ""))
    except ImportError:
        return False
    return getattr(backend, "emits_file_events", False) is True


def file_storage_aliases() -> list[str]:
    """Aliases a FILE trigger may name: those configured as an EventingStorage."""
    return [alias for alias in storage_aliases() if emits_file_events(alias)]


def validate_file_source(alias: str) -> None:
    """Refuse, on `source`, a storage alias whose files would never fire a FILE trigger."""
    evented = file_storage_aliases()
    choose = f"choose one of {', '.join(evented)}" if evented else "none is configured"
    if alias not in storage_aliases():
        raise ValidationError(
            {"source": f"{alias!r} is not a storage alias; {choose} (EventingStorage aliases)."}
        )
    if alias in evented:
        return
    wrappers = [
        other
        for other in evented
        if (settings.STORAGES[other].get("OPTIONS") or {}).get("wraps") == alias
    ]
    hint = (
        f"use {wrappers[0]!r}, which wraps it"
        if wrappers
        else f"configure STORAGES[{alias!r}] with BACKEND 'eventing.storage.EventingStorage' "
        "(docs/storage.md)"
    )
    raise ValidationError(
        {
            "source": f"Storage {alias!r} is not wrapped in EventingStorage, so its saves and "
            f"deletes emit no file events: {hint}."
        }
    )


def validate_url(url: str, *, placeholders: bool = True) -> None:
    """Refuse anything but an absolute http(s) URL (placeholders allowed unless told not)."""
    bad = first_unprintable(url or "")
    if bad:
        # CR/LF would split the request line (and a Location header that echoed it).
        raise ValidationError({"url": f"The URL may not contain {bad} (encode it as %XX)."})
    candidate = ENV_PLACEHOLDER_RE.sub("placeholder", url or "")
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        allowed = " (placeholders {{ENV_VAR}} allowed)" if placeholders else ""
        raise ValidationError({"url": f"Enter an absolute http:// or https:// URL{allowed}."})
    if " " in candidate:
        raise ValidationError({"url": "The URL may not contain spaces (encode them as %20)."})
    for name in ENV_PLACEHOLDER_RE.findall(url or ""):
        refuse_unreadable_env(name, "url", "The URL")


def refuse_unreadable_env(name: str, field: str, where: str) -> None:
    """Refuse an environment variable outside EVENTING["TRIGGER_ENV"], naming the field."""
    if not defaults.env_readable(name):
        allowed = ", ".join(defaults.trigger_env()) or "none"
        raise ValidationError(
            {
                field: f"{where} may not read the environment variable {name}: triggers read "
                f"only variables matching EVENTING['TRIGGER_ENV'] ({allowed})."
            }
        )


def first_unprintable(text: str, *, allow_tab: bool = False) -> str | None:
    """The first control or non-printable character of `text` (repr), or None."""
    for char in text:
        if not char.isprintable() and not (allow_tab and char == "\t"):
            return f"the character {char!r}"
    return None


def validate_storable(value: Any, field: str) -> None:
    """No NUL or lone surrogate in any string of a JSON value: jsonb and UTF-8 refuse them."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValidationError({field: "Text may not contain the NUL character (\\u0000)."})
            try:
                item.encode()
            except UnicodeEncodeError:
                raise ValidationError({field: "Text may not contain a lone surrogate."}) from None


def validate_headers(headers) -> None:
    """Headers are a list of {name, value} or {name, value_from_env}."""
    if not isinstance(headers, list):
        raise ValidationError({"headers": "Headers must be a list of objects."})
    for index, header in enumerate(headers):
        validate_header(header, f"headers[{index}]")


def validate_header(header: Any, where: str) -> None:
    """One header: a valid name we do not set ourselves, and exactly one kind of value."""
    if not isinstance(header, dict) or not isinstance(header.get("name"), str):
        raise ValidationError({"headers": f"{where}: each header needs a string 'name'."})
    name = header["name"]
    validate_header_name(name, where)
    extra = set(header) - {"name", "value", "value_from_env"}
    if extra:
        raise ValidationError({"headers": f"{where}: unknown keys {sorted(extra)}."})
    validate_header_source(header, f"{where} ({name})", where)


def validate_header_name(name: str, where: str) -> None:
    """An RFC 9110 token that is not one of the headers Eventing sets itself."""
    if not HEADER_NAME_RE.match(name):
        raise ValidationError({"headers": f"{where}: {name!r} is not a valid header name."})
    if name.lower() in RESERVED_HEADERS:
        raise ValidationError({"headers": f"{where}: {name} is set by Eventing itself."})


def validate_header_source(header: dict, named: str, where: str) -> None:
    """Exactly one of a literal `value` or `value_from_env` naming an environment variable."""
    has_value = isinstance(header.get("value"), str)
    has_env = isinstance(header.get("value_from_env"), str) and header["value_from_env"]
    if has_value == bool(has_env):
        raise ValidationError(
            {"headers": f"{where}: give exactly one of 'value' or 'value_from_env'."}
        )
    if has_env and not ENV_NAME_RE.match(header["value_from_env"]):
        raise ValidationError(
            {"headers": f"{where}: value_from_env must name an environment variable."}
        )
    if has_env:
        refuse_unreadable_env(header["value_from_env"], "headers", where)
    if has_value:
        validate_header_value(header["value"], named)


def validate_header_value(value: str, where: str) -> None:
    """A value HTTP can carry: Latin-1, no control characters (CR/LF would split headers)."""
    bad = first_unprintable(value, allow_tab=True)
    if bad:
        raise ValidationError({"headers": f"{where}: the value may not contain {bad}."})
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValidationError(
            {
                "headers": f"{where}: the value must be Latin-1 text (HTTP headers cannot carry "
                "other characters; percent- or base64-encode it)."
            }
        ) from None


def validate_signing_secret(secret: str) -> None:
    """`whsec_` + strict base64 of 24 to 64 bytes, as Standard Webhooks defines it."""
    prefix = "whsec_"
    if not (secret or "").startswith(prefix):
        raise ValidationError({"signing_secret": "Signing secrets start with whsec_."})
    try:
        key = base64.b64decode(secret[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            {"signing_secret": "After whsec_ a signing secret is base64 (A-Z a-z 0-9 + / =)."}
        ) from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValidationError(
            {
                "signing_secret": f"A signing secret holds {low} to {high} bytes; this one holds "
                f"{len(key)}. Leave it out to get a fresh one."
            }
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


def validate_ordering_key(path: str) -> None:
    """An ordering key is empty or a dotted payload path such as `pk` or `new.customer_id`."""
    if path and not ORDERING_KEY_RE.match(path):
        raise ValidationError(
            {
                "ordering_key": f"{path!r} is not a payload path: give dot-separated keys of "
                "letters, digits, _ and - (e.g. pk or new.customer_id)."
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
    """Raise ValidationError naming the field for anything a trigger cannot work with.

    One validator per field group of triggers.fields, in the groups' order.
    """
    for group in fields.GROUPS:
        GROUP_VALIDATORS[group.key](trigger)


def validate_only_for(trigger, group_key: str) -> None:
    """Refuse a value on a field of the group that the trigger's type does not use."""
    for name in fields.group(group_key).fields:
        kinds, message = fields.ONLY_FOR.get(name, (None, ""))
        if kinds is not None and getattr(trigger, name) and trigger.type not in kinds:
            raise ValidationError({name: message})


def validate_type(event_type: str) -> None:
    """A built-in type, CRON, or a custom name that is not reserved."""
    if event_type in types.BUILTIN_TYPES or event_type == types.CRON:
        return
    if event_type.upper() == types.MANUAL:
        raise ValidationError(
            {"type": "MANUAL is the type of rows sent by hand or by a backfill; pick another."}
        )
    if event_type.upper().startswith(types.RESERVED_PREFIXES):
        raise ValidationError(
            {"type": f"{event_type!r}: the DB_ and FILE_ prefixes are reserved for built-in types."}
        )
    if not types.NAME_RE.match(event_type):
        raise ValidationError({"type": "Use only letters, digits and underscores."})


def validate_db_source(trigger):
    """The model a DB trigger watches (its label normalised on the trigger); checks others add."""
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
    for check in DB_SOURCE_CHECKS:
        check(trigger, model)
    return model


def validate_source(trigger):
    """The source the type needs: a model (returned), an evented storage, or none."""
    if types.is_db_type(trigger.type):
        return validate_db_source(trigger)
    if types.is_file_type(trigger.type):
        validate_file_source(trigger.source)
    elif trigger.source:
        raise ValidationError({"source": "Custom event triggers have no source; leave it blank."})
    return None


def validate_matching(trigger) -> None:
    """Type, source, the model's fields named, the filter."""
    validate_type(trigger.type or "")
    model = validate_source(trigger)
    allowed = model_field_names(model) if model else None
    validate_field_list(trigger.watch_fields, "watch_fields", allowed)
    validate_field_list(trigger.payload_fields, "payload_fields", allowed)
    validate_only_for(trigger, "matching")
    validate_filter(trigger.filter)
    validate_storable(trigger.filter, "filter")


def validate_schedule(trigger) -> None:
    """A cron expression only on CRON triggers, and a valid one there."""
    validate_only_for(trigger, "schedule")
    validate_cron(trigger)


def validate_webhook(trigger) -> None:
    """URL, headers (Authorization given once), signing secret."""
    validate_url(trigger.url)
    validate_headers(trigger.headers)
    if trigger.send_authorization and any(
        header["name"].lower() == "authorization" for header in trigger.headers
    ):
        raise ValidationError(
            {"headers": "Authorization is sent by 'send Authorization'; remove one of them."}
        )
    validate_signing_secret(trigger.signing_secret)


def validate_retries(trigger) -> None:
    """Backoff bounds in order; retried statuses as the policy needs them."""
    if trigger.backoff_max_s < trigger.backoff_base_s:
        raise ValidationError({"backoff_max_s": "Must be at least the backoff base."})
    validate_retry_statuses(trigger.retry_statuses, trigger.retry_policy)


def validate_delivery_control(trigger) -> None:
    """The ordering key is a payload path (the caps are bounded by their field validators)."""
    validate_ordering_key(trigger.ordering_key)


def field_validators_only(trigger) -> None:
    """Groups whose fields need no check beyond their model field's validators."""


def validate_request(trigger) -> None:
    """The transform's templates, then no framing header set by headers or header templates."""
    validate_transform(trigger)
    refuse_framing_headers(trigger)


# Headers that belong to the connection or the message's framing, not to the request: a
# trigger setting them could desynchronise the receiver (`Transfer-Encoding: identity`) or
# speak for another client (`Cookie`, `Host`). Compared case-insensitively.
FRAMING_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "cookie",
        "host",
        "content-length",
        "content-encoding",
    }
)


def refuse_framing_headers(trigger) -> None:
    """Literal headers and header templates may not set hop-by-hop or framing headers, nor
    Authorization (in any case) when the trigger sends its own; the error names the field."""
    named = [("headers", h.get("name", "")) for h in trigger.headers or [] if isinstance(h, dict)]
    named += [("transform_headers", name) for name in trigger.transform_headers or {}]
    for field, name in named:
        lowered = str(name).lower()
        if lowered in FRAMING_HEADERS:
            raise ValidationError(
                {field: f"{name}: a connection or framing header; HTTP sets it, not a trigger."}
            )
        if lowered == "authorization" and trigger.send_authorization:
            raise ValidationError(
                {field: f"{name}: sent by 'send Authorization'; remove one of them."}
            )


def validate_template(source: Any, field: str, where: str = "") -> None:
    """A template that compiles in the sandbox; a syntax error is refused naming the field."""
    if not isinstance(source, str):
        raise ValidationError({field: f"{where}a template is text."})
    try:
        templating.compile_template(source)
    except templating.TransformError as exc:
        raise ValidationError({field: f"{where}{exc}"}) from None


def validate_template_map(value: Any, field: str, *, headers: bool) -> None:
    """An object of name to template: query parameters, or header templates."""
    if not isinstance(value, dict):
        raise ValidationError({field: 'Give an object of name to template: {"a": "{{ id }}"}.'})
    for name, source in value.items():
        if not name:
            raise ValidationError({field: "Names may not be empty."})
        if headers and not HEADER_NAME_RE.match(name):
            raise ValidationError({field: f"{name!r} is not a valid header name."})
        # Content-Type may follow the body template; the rest is set by Eventing itself.
        if headers and name.lower() in RESERVED_HEADERS - {"content-type"}:
            raise ValidationError({field: f"{name} is set by Eventing itself."})
        validate_template(source, field, f"{name}: ")


def validate_transform(trigger) -> None:
    """The request transform: a known method and templates that compile (triggers.templating)."""
    if trigger.transform_method not in trigger.REQUEST_METHODS:
        raise ValidationError(
            {"transform_method": f"Choose one of {', '.join(trigger.REQUEST_METHODS)}."}
        )
    validate_template(trigger.transform_url or "", "transform_url")
    validate_template(trigger.transform_body or "", "transform_body")
    validate_template_map(trigger.transform_query, "transform_query", headers=False)
    validate_template_map(trigger.transform_headers, "transform_headers", headers=True)
    validate_storable(trigger.transform_url, "transform_url")
    validate_storable(trigger.transform_body, "transform_body")
    validate_storable(trigger.transform_query, "transform_query")
    validate_storable(trigger.transform_headers, "transform_headers")


def validate_cron(trigger) -> None:
    """A CRON trigger needs a five-field expression and a known timezone."""
    if trigger.type != types.CRON:
        return
    expression = (trigger.cron_expression or "").strip()
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValidationError(
            {
                "cron_expression": 'Give five cron fields, e.g. "*/5 * * * *" (minute hour day '
                "month weekday)."
            }
        )
    trigger.cron_expression = expression
    try:
        schedule.zone(trigger.cron_timezone)
    except schedule.ScheduleError as exc:
        raise ValidationError({"cron_timezone": str(exc)}) from None
    try:
        schedule.runs_after(expression, trigger.cron_timezone, timezone.now(), 1)
    except schedule.ScheduleError as exc:
        raise ValidationError({"cron_expression": str(exc)}) from None
    validate_storable(trigger.cron_payload, "cron_payload")


def validate_retry_statuses(statuses: Any, policy: str) -> None:
    """A list of HTTP statuses (100-599), required by the "listed" retry policy."""
    if not isinstance(statuses, list) or not all(
        type(code) is int and 100 <= code <= 599 for code in statuses
    ):
        raise ValidationError(
            {"retry_statuses": "Give a list of HTTP statuses (100 to 599), e.g. [409, 503]."}
        )
    if policy == "listed" and not statuses:
        raise ValidationError(
            {"retry_statuses": 'The "listed statuses" retry policy needs at least one status.'}
        )


# The validator of each field group of triggers.fields (a test holds the two in step).
GROUP_VALIDATORS = {
    "identity": field_validators_only,
    "matching": validate_matching,
    "schedule": validate_schedule,
    "webhook": validate_webhook,
    "transform": validate_request,
    "retries": validate_retries,
    "delivery_control": validate_delivery_control,
    "state": field_validators_only,
}


def validate_json_schema(schema) -> None:
    """Refuse a JSON Schema that is invalid, too large, or unsafe to apply to payloads.

    Raises ValidationError({"schema": …}). One rule set for the admin, the API and the
    payload check at queue time (schemas saved before these rules are refused there too).
    """
    if schema in (None, {}):
        return
    validate_storable(schema, "schema")
    problem = schema_problem(json.dumps(schema, ensure_ascii=False), defaults.max_schema_bytes())
    if problem:
        raise ValidationError({"schema": problem})


def validate_event_type(event_type) -> None:
    """Event type names are custom names; the schema must be a valid JSON Schema."""
    if not types.is_custom_type(event_type.name or ""):
        raise ValidationError(
            {"name": "Use letters, digits and underscores, not starting with DB_ or FILE_."}
        )
    validate_json_schema(event_type.schema)
