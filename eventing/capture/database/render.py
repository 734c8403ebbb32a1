"""Values as `model_data.json_safe` renders them, written in SQL."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings as django_settings
from django.db import models

from eventing.capture.database.sql import literal, text_array
from eventing.capture.model_data import MAX_SAFE_INT

logger = logging.getLogger(__name__)

# Python writes integral floats below this as "1.0"; PostgreSQL's float output drops the ".0".
FLOAT_REPR_EXPONENT_AT = "1e16"

# --- values as model_data.json_safe renders them ---------------------------------------------


def storage_field(model_field: models.Field) -> models.Field:
    """The field whose type a column has (a foreign key's column has its target's)."""
    while model_field.is_relation and getattr(model_field, "target_field", None) is not None:
        model_field = model_field.target_field
    return model_field


def float_json(x: str) -> str:
    """A float as json_safe writes it: 1.0 stays 1.0, infinities and NaN become "inf"/"nan"."""
    return (
        f"CASE jsonb_typeof({x}) "
        f"WHEN 'string' THEN to_jsonb(CASE {x} #>> '{{}}' WHEN 'Infinity' THEN 'inf' "
        f"WHEN '-Infinity' THEN '-inf' ELSE 'nan' END) "
        f"WHEN 'number' THEN CASE WHEN ({x})::numeric = trunc(({x})::numeric) "
        f"AND abs(({x})::numeric) < {FLOAT_REPR_EXPONENT_AT} "
        f"THEN (({x})::text || '.0')::jsonb ELSE {x} END "
        f"ELSE {x} END"
    )


def value_sql(model_field: models.Field, row: str) -> str:
    """SQL for one field of `row` (a captured row as jsonb) as JSON-safe jsonb.

    Mirrors `model_data.json_safe`: big integers and decimals as strings, datetimes as
    isoformat writes them (UTC, "+00:00"), durations as seconds, bytes as base64, files as their
    name (empty: null). Other types keep to_jsonb's rendering (see docs/guarantees.md).
    """
    x = f"({row} -> {literal(model_field.column)})"
    text = f"({x} #>> '{{}}')"
    kind = storage_field(model_field)
    if isinstance(kind, models.BigIntegerField):
        return (
            f"CASE WHEN jsonb_typeof({x}) = 'number' AND abs(({x})::numeric) > {MAX_SAFE_INT} "
            f"THEN to_jsonb({text}) ELSE {x} END"
        )
    if isinstance(kind, models.FloatField):
        return float_json(x)
    if isinstance(kind, models.DecimalField):
        return f"to_jsonb({text})"
    if isinstance(kind, models.DateTimeField):
        if django_settings.USE_TZ:
            moment = f"({text}::timestamptz AT TIME ZONE 'UTC')"
            return f"to_jsonb(({iso_text(moment)}) || '+00:00')"
        moment = f"({text}::timestamptz AT TIME ZONE {literal(django_settings.TIME_ZONE)})"
        return f"to_jsonb({iso_text(moment)})"
    if isinstance(kind, models.TimeField):
        moment = f"('2000-01-01'::date + {text}::time)"
        return f"to_jsonb(substr({iso_text(moment)}, 12))"
    if isinstance(kind, models.DurationField):
        return float_json(f"to_jsonb(extract(epoch FROM {text}::interval)::float8)")
    if isinstance(kind, models.BinaryField):
        return f"to_jsonb(translate(encode({text}::bytea, 'base64'), E'\\n', ''))"
    if isinstance(model_field, models.FileField):
        return f"to_jsonb(NULLIF({text}, ''))"
    return x


def iso_text(moment: str) -> str:
    """A timestamp as isoformat writes it (microseconds only when there are some), one to_char."""
    return (
        f"CASE WHEN date_trunc('second', {moment}) = {moment} "
        f"THEN to_char({moment}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"ELSE to_char({moment}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') END"
    )


def float_column(value: str) -> str:
    """A float8 as json_safe writes it (see float_json), from a typed value."""
    return (
        f"CASE WHEN {value} = 'Infinity'::float8 THEN '\"inf\"'::jsonb "
        f"WHEN {value} = '-Infinity'::float8 THEN '\"-inf\"'::jsonb "
        f"WHEN {value} = 'NaN'::float8 THEN '\"nan\"'::jsonb "
        f"WHEN {value} = trunc({value}) AND abs({value}) < {FLOAT_REPR_EXPONENT_AT} "
        f"THEN (to_jsonb({value})::text || '.0')::jsonb ELSE to_jsonb({value}) END"
    )


def column_sql(model_field: models.Field, column: str) -> str:
    """SQL for one field read from its typed column, as JSON-safe jsonb (as value_sql, faster)."""
    kind = storage_field(model_field)
    if isinstance(kind, models.BigIntegerField):
        return (
            f"CASE WHEN {column} BETWEEN -{MAX_SAFE_INT} AND {MAX_SAFE_INT} "
            f"THEN to_jsonb({column}) ELSE to_jsonb({column}::text) END"
        )
    if isinstance(kind, models.FloatField):
        return float_column(column)
    if isinstance(kind, models.DecimalField):
        return f"to_jsonb({column}::text)"
    if isinstance(kind, models.DateTimeField):
        if django_settings.USE_TZ:
            moment = f"({column} AT TIME ZONE 'UTC')"
            return f"to_jsonb(({iso_text(moment)}) || '+00:00')"
        moment = f"({column} AT TIME ZONE {literal(django_settings.TIME_ZONE)})"
        return f"to_jsonb({iso_text(moment)})"
    if isinstance(kind, models.TimeField):
        moment = f"('2000-01-01'::date + {column})"
        return f"to_jsonb(substr({iso_text(moment)}, 12))"
    if isinstance(kind, models.DurationField):
        return float_column(f"extract(epoch FROM {column})::float8")
    if isinstance(kind, models.BinaryField):
        return f"to_jsonb(translate(encode({column}, 'base64'), E'\\n', ''))"
    if isinstance(model_field, models.FileField):
        return f"to_jsonb(NULLIF({column}, ''))"
    if isinstance(kind, models.JSONField):
        return column
    return f"to_jsonb({column})"


# Built-in fields whose column type has an equality operator (IS DISTINCT FROM needs one);
# other fields are compared through to_jsonb.
COMPARABLE = (
    models.IntegerField,
    models.FloatField,
    models.DecimalField,
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.DateField,
    models.TimeField,
    models.DurationField,
    models.UUIDField,
    models.JSONField,
    models.BinaryField,
    models.GenericIPAddressField,
    models.FileField,
)


def minus(expression: str, names: Iterable[str]) -> str:
    """`expression` without the keys (or array elements) in `names`."""
    names = sorted(names)
    return f"({expression} - {text_array(names)})" if names else expression
