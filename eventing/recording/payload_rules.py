"""What an event payload may hold: JSON every receiver and database reads back unchanged, and
what its type's JSON Schema allows (checked within a time budget)."""

from __future__ import annotations

import contextvars
import json
import math
import time
from collections.abc import Callable, Hashable
from decimal import Decimal
from functools import cache
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import regex
from django.core.exceptions import ValidationError

from eventing.conf import settings
from eventing.models import MAX_PAYLOAD_DEPTH
from triggers.defaults import max_schema_bytes
from triggers.validation import schema_problem

# Deeper nesting than this is refused (the bound is the payload column's, in eventing.models).
MAX_DEPTH = MAX_PAYLOAD_DEPTH


def check_payload(payload: Any) -> int:
    """Refuse a payload that cannot travel as JSON unchanged; return its size in bytes.

    Raises ValidationError({"payload": …}) naming where the problem is: a value that is not
    JSON (NaN, Infinity, a set, a date…), a top-level null, a string PostgreSQL cannot store
    (NUL) or UTF-8 cannot encode (a lone surrogate), nesting deeper than MAX_DEPTH, or a
    payload larger than EVENTING["MAX_PAYLOAD_BYTES"].
    """
    if payload is None:
        # The row's payload column cannot tell JSON null from "missing": ask for {} instead.
        raise ValidationError(
            {"payload": "A payload is required; send {} for an event without data."}
        )
    check_value(payload, "payload", 0)
    try:
        encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValidationError(
            {"payload": f"The payload cannot be encoded as JSON: {exc}"}
        ) from None
    size = len(encoded.encode())
    limit = settings.MAX_PAYLOAD_BYTES
    if size > limit:
        raise ValidationError(
            {
                "payload": f"The payload is {size} bytes of JSON; the limit is {limit} "
                "(EVENTING['MAX_PAYLOAD_BYTES'])."
            }
        )
    return size


def check_value(value: Any, where: str, depth: int) -> None:
    """Walk `value` (recursion is bounded by MAX_DEPTH) and refuse its first bad part."""
    if depth > MAX_DEPTH:
        raise ValidationError({"payload": f"{where}: nested deeper than {MAX_DEPTH} levels."})
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                {
                    "payload": f"{where}: {value} is not a JSON number (NaN and Infinity are not "
                    "allowed)."
                }
            )
        return
    if isinstance(value, str):
        check_string(value, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    {"payload": f"{where}: object keys must be strings, not {type(key).__name__}."}
                )
            check_string(key, f"{where} (key)")
            check_value(item, f"{where}.{key[:40]}", depth + 1)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_value(item, f"{where}[{index}]", depth + 1)
        return
    raise ValidationError(
        {
            "payload": f"{where}: a {type(value).__name__} is not a JSON value; send strings, "
            "numbers, booleans, null, lists and objects."
        }
    )


def check_string(text: str, where: str) -> None:
    """Refuse NUL (PostgreSQL cannot store it) and lone surrogates (not encodable as UTF-8)."""
    if "\x00" in text:
        raise ValidationError({"payload": f"{where}: strings may not contain the NUL character."})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            {"payload": f"{where}: the string holds a lone surrogate, which is not valid Unicode."}
        ) from None


# Checking a payload against its type's JSON Schema ------------------------------------------
#
# Anyone allowed to queue a type makes the web process run its schema, so the check is bounded:
# - nothing is fetched: the schema must pass triggers.validation (only "#/…" references, no
#   self-reference that never descends into the payload), and the validator gets an empty
#   referencing.Registry, which cannot retrieve anything;
# - a time budget, EVENTING["SCHEMA_VALIDATION_BUDGET_MS"]: every keyword checks the deadline
#   before it runs, so combinatorial schemas (nested anyOf, recursion through properties) stop
#   there. Python's `re` cannot be interrupted mid-match, so pattern, patternProperties and
#   additionalProperties match with the `regex` module, whose timeout is the budget left
#   (`^(a|a)+$` against a long string stops; `^(a+)+$` it answers at once). The one place
#   jsonschema itself calls `re` (unevaluatedProperties with patternProperties) is refused
#   when the schema is saved;
# - uniqueItems hashes the items (linear) instead of jsonschema's pairwise comparison, which
#   is quadratic (15 s for 4,000 objects);
# - the payload was already bounded by check_payload (size, depth), which runs first.

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar("schema_deadline")
# Error messages quote the payload; a 1 MB repr helps nobody.
MAX_MESSAGE_CHARS = 300


class SchemaBudgetExceeded(Exception):
    """Checking a payload took longer than EVENTING["SCHEMA_VALIDATION_BUDGET_MS"]."""


def check_against_schema(event_type: str, schema: Any, payload: Any) -> None:
    """Refuse `payload` unless it satisfies `schema`, the JSON Schema of `event_type`.

    The one schema check of the API and Mission Control. Raises ValidationError keyed by the
    path of the offending part (`payload`, `payload.items[1].qty`); a schema that cannot be
    applied or a check over its time budget is a ValidationError on `payload` too.
    """
    if schema in (None, {}):
        return
    problem = schema_problem(json.dumps(schema, ensure_ascii=False), max_schema_bytes())
    if problem:
        raise ValidationError(
            {"payload": f"The JSON Schema of {event_type!r} cannot be applied: {problem}"}
        )
    budget_ms = settings.SCHEMA_VALIDATION_BUDGET_MS
    validator = bounded_validator(schema)
    token = _deadline.set(time.monotonic() + budget_ms / 1000)
    try:
        error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    except SchemaBudgetExceeded:
        raise ValidationError(
            {
                "payload": f"Checking the payload against the JSON Schema of {event_type!r} "
                f"took over {budget_ms} ms (EVENTING['SCHEMA_VALIDATION_BUDGET_MS']); send a "
                "smaller payload or simplify the schema."
            }
        ) from None
    except RecursionError:
        raise ValidationError(
            {"payload": f"The payload is nested too deeply for the JSON Schema of {event_type!r}."}
        ) from None
    except (jsonschema.exceptions.SchemaError, referencing.exceptions.Unresolvable) as exc:
        raise ValidationError(
            {"payload": f"The JSON Schema of {event_type!r} cannot be applied: {exc}"}
        ) from None
    finally:
        _deadline.reset(token)
    if error is not None:
        raise ValidationError({schema_error_path(error): shorten(error.message)})


def bounded_validator(schema: Any) -> jsonschema.protocols.Validator:
    """A validator of `schema` that fetches nothing and keeps to the time budget."""
    base = jsonschema.validators.validator_for(schema)
    validator_class = bounded_class(base)
    return validator_class(
        schema, registry=referencing.Registry(), format_checker=base.FORMAT_CHECKER
    )


@cache
def bounded_class(base: type) -> type:
    """`base` (a jsonschema draft) with every keyword checking the deadline first."""
    replaced = {
        "pattern": pattern,
        "patternProperties": pattern_properties,
        "additionalProperties": additional_properties,
        "uniqueItems": unique_items,
    }
    keywords = {
        name: within_budget(replaced.get(name, keyword))
        for name, keyword in base.VALIDATORS.items()
    }
    return jsonschema.validators.extend(base, keywords)


def within_budget(keyword: Callable) -> Callable:
    """The keyword function, refusing to start once the deadline has passed."""

    def run(validator, value, instance, schema):
        time_left()
        return keyword(validator, value, instance, schema)

    return run


def time_left() -> float:
    """Seconds left of the budget; SchemaBudgetExceeded when none."""
    left = _deadline.get() - time.monotonic()
    if left <= 0:
        raise SchemaBudgetExceeded
    return left


def search(pattern_text: str, text: str) -> bool:
    """re.search semantics, stopped by the budget (the `regex` module honours a timeout)."""
    try:
        return regex.search(pattern_text, text, timeout=time_left()) is not None
    except TimeoutError:
        raise SchemaBudgetExceeded from None


def pattern(validator, pattern_text, instance, schema):
    """The `pattern` keyword, time-bounded."""
    if validator.is_type(instance, "string") and not search(pattern_text, instance):
        yield jsonschema.ValidationError(
            f"{shorten(repr(instance))} does not match {pattern_text!r}"
        )


def pattern_properties(validator, patterns, instance, schema):
    """The `patternProperties` keyword, time-bounded."""
    if not validator.is_type(instance, "object"):
        return
    for pattern_text, subschema in patterns.items():
        for name, value in instance.items():
            if search(pattern_text, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern_text)


def additional_properties(validator, additional, instance, schema):
    """The `additionalProperties` keyword, matching patternProperties time-bounded."""
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [
        name
        for name in instance
        if name not in known and not any(search(p, name) for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for name in extras:
            yield from validator.descend(instance[name], additional, path=name)
    elif not additional and extras:
        names = ", ".join(repr(name) for name in sorted(extras))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            yield jsonschema.ValidationError(
                f"{shorten(names)} {verb} not match any of the regexes: "
                f"{', '.join(repr(p) for p in sorted(patterns))}"
            )
        else:
            yield jsonschema.ValidationError(
                f"Additional properties are not allowed ({shorten(names)} unexpected)"
            )


def unique_items(validator, unique, instance, schema):
    """The `uniqueItems` keyword in linear time (hashing, JSON equality: 1 == 1.0 != true)."""
    if not unique or not validator.is_type(instance, "array"):
        return
    seen = set()
    for index, item in enumerate(instance):
        key = json_key(item)
        if key in seen:
            yield jsonschema.ValidationError(
                f"The array has non-unique elements (item {index} repeats an earlier one)"
            )
            return
        seen.add(key)


def same_json(a: Any, b: Any) -> bool:
    """Whether two payloads are the same JSON: objects in any key order, numbers compared as
    numbers (PostgreSQL may give 1e300 back as digits), `true` never equal to 1."""
    return json_key(as_decimals(a)) == json_key(as_decimals(b))


def as_decimals(value: Any) -> Any:
    """A JSON value with every number a Decimal, so 1e300 and 10**300 compare equal."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


def json_key(value: Any) -> Hashable:
    """A hashable stand-in for a JSON value, equal exactly when the values are JSON-equal."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float, Decimal)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(json_key(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((name, json_key(item)) for name, item in value.items()))
    return ("other", repr(value))


def schema_error_path(error: jsonschema.ValidationError) -> str:
    """`payload.items[0].qty` for a jsonschema error at ["items", 0, "qty"]."""
    path = "payload"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def shorten(text: str) -> str:
    """`text`, cut to MAX_MESSAGE_CHARS."""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 1] + "…"
