"""Search event_logs by payload values and list invocations: one reading of the query
parameters for the HTTP API and Mission Control.

`payload__customer_id=42` matches events whose payload has `customer_id` 42 (or "42");
`payload__new__status=paid` looks one level deeper. On PostgreSQL each filter is a JSON
containment (`payload @> '{"new": {"status": "paid"}}'`) that the GIN index `event_logs_payload`
(jsonb_path_ops) answers; elsewhere a JSON1 path lookup. What an outsider controls is bounded:
how many filters, how deep a key, how long a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform

PREFIX = "payload__"
# Largest number compared as a number.
MAX_SAFE_INT = 2**53 - 1
# Most payload filters in one query: each is one more index probe to intersect.
MAX_FILTERS = 5
# Deepest key path (`payload__a__b__c__d__e`).
MAX_DEPTH = 5
# Longest value compared (characters).
MAX_VALUE_LENGTH = 200
# A key: starts with a letter or underscore (a digit would read as an array index on SQLite),
# then letters, digits, underscores or hyphens. Lookup names (`regex`, `contains`) are keys too:
# they are never passed to the ORM as lookups.
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")


@dataclass(frozen=True)
class PayloadFilter:
    """One `payload__…` parameter: the key path and the values it accepts (any of them)."""

    parameter: str
    path: tuple[str, ...]
    values: tuple[Any, ...]


def is_payload_parameter(name: str) -> bool:
    """Whether a query parameter is a payload filter."""
    return name.startswith(PREFIX)


def candidate_values(raw: str) -> tuple[Any, ...]:
    """What a query string value may stand for: the text, and the JSON number, boolean or null
    it spells ("42" matches 42 and "42")."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return (raw,)
    if parsed is None or isinstance(parsed, bool):
        return (raw, parsed)
    # Beyond 2**53 payloads hold numbers as strings (model_data.MAX_SAFE_INT); inf is no JSON.
    if isinstance(parsed, (int, float)) and abs(parsed) <= MAX_SAFE_INT:
        return (raw, parsed)
    return (raw,)


def query_pairs(query) -> list[tuple[str, str]]:
    """Every (name, value) of a QueryDict, a repeated name once per value (`.items()` keeps
    only the last, which would drop a filter the caller asked for)."""
    return [(name, value) for name, values in query.lists() for value in values]


def parse_payload_filters(params: Iterable[tuple[str, str]]) -> list[PayloadFilter]:
    """The payload filters among (name, value) query parameters (see query_pairs), every one
    of them required: a repeated `payload__k` matches events that hold each value, as two
    filters do. ValidationError naming the parameter for one out of bounds."""
    found = []
    for name, raw in params:
        if not is_payload_parameter(name):
            continue
        path = tuple(name[len(PREFIX) :].split("__"))
        if len(found) >= MAX_FILTERS:
            raise ValidationError({name: f"At most {MAX_FILTERS} payload filters per query."})
        if len(path) > MAX_DEPTH:
            raise ValidationError({name: f"A payload key is at most {MAX_DEPTH} levels deep."})
        bad = next((key for key in path if not KEY_RE.match(key)), None)
        if bad is not None:
            raise ValidationError(
                {
                    name: f"{bad[:40]!r} is not a payload key: letters, digits, _ and -, "
                    "starting with a letter or _, at most 64 characters."
                }
            )
        if len(raw) > MAX_VALUE_LENGTH:
            raise ValidationError(
                {name: f"A payload value is at most {MAX_VALUE_LENGTH} characters."}
            )
        if "\x00" in raw:
            raise ValidationError({name: "A payload value cannot hold a NUL character."})
        found.append(PayloadFilter(parameter=name, path=path, values=candidate_values(raw)))
    return found


def nested(path: tuple[str, ...], value: Any) -> dict:
    """{"a": {"b": value}} for the path ("a", "b")."""
    for key in reversed(path):
        value = {key: value}
    return value


def key_transform(path: tuple[str, ...]) -> KeyTransform:
    """payload -> path[0] -> path[1] …, built as an expression (never parsed as lookups)."""
    expression: Any = "payload"
    for key in path:
        expression = KeyTransform(key, expression)
    return expression


def filter_by_payload(queryset: QuerySet, filters: list[PayloadFilter]) -> QuerySet:
    """`queryset` narrowed to events whose payload matches every filter."""
    if not filters:
        return queryset
    if connections[queryset.db].vendor == "postgresql":
        for item in filters:
            match = Q()
            for value in item.values:
                match |= Q(payload__contains=nested(item.path, value))
            queryset = queryset.filter(match)
        return queryset
    for index, item in enumerate(filters):
        name = f"payload_search_{index}"
        queryset = queryset.alias(**{name: key_transform(item.path)})
        match = Q()
        for value in item.values:
            match |= Q(**{name: value})
        queryset = queryset.filter(match)
    return queryset


def filter_invocations(
    queryset: QuerySet,
    *,
    trigger: str | None = None,
    status_code: int | None = None,
    succeeded: bool | None = None,
    invoked_after: Any = None,
    invoked_before: Any = None,
) -> QuerySet:
    """Attempts across events: of one trigger (by name), by status code, outcome and time."""
    if trigger:
        queryset = queryset.filter(event__trigger_name=trigger)
    if status_code is not None:
        queryset = queryset.filter(response_status_code=status_code)
    if succeeded is not None:
        queryset = queryset.filter(succeeded=succeeded)
    if invoked_after is not None:
        queryset = queryset.filter(invoked_at__gte=invoked_after)
    if invoked_before is not None:
        queryset = queryset.filter(invoked_at__lt=invoked_before)
    return queryset
