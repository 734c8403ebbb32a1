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


def iso_text(moment: str) -> str:
    """A timestamp as isoformat writes it (microseconds only when there are some), one to_char."""
    return (
        f"CASE WHEN date_trunc('second', {moment}) = {moment} "
        f"THEN to_char({moment}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"ELSE to_char({moment}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') END"
    )


def float_column(value: str) -> str:
    """A float8 as json_safe writes it: 1.0 stays 1.0, infinities and NaN become "inf"/"nan"."""
    return (
        f"CASE WHEN {value} = 'Infinity'::float8 THEN '\"inf\"'::jsonb "
        f"WHEN {value} = '-Infinity'::float8 THEN '\"-inf\"'::jsonb "
        f"WHEN {value} = 'NaN'::float8 THEN '\"nan\"'::jsonb "
        f"WHEN {value} = trunc({value}) AND abs({value}) < {FLOAT_REPR_EXPONENT_AT} "
        f"THEN (to_jsonb({value})::text || '.0')::jsonb ELSE to_jsonb({value}) END"
    )


def column_sql(model_field: models.Field, column: str) -> str:
    """SQL for one field's typed value as JSON-safe jsonb: `model_data.json_safe` in SQL.

    Big integers and decimals as strings, datetimes as isoformat writes them (UTC, "+00:00"),
    durations as seconds, bytes as base64, files as their name (empty: null). Other types keep
    to_jsonb's rendering (see docs/guarantees.md).
    """
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


# How the robust form reads a captured JSON value back into the type column_sql renders: the
# field kind, the built-in type it is cast to (pg_catalog's: the functions' search_path is
# pinned), and the JSON types the cast applies to (None: any; others are sent as they are).
READ_BACK: tuple[tuple[type[models.Field], str, tuple[str, ...] | None], ...] = (
    (models.BigIntegerField, "numeric", ("number",)),
    # row_to_json writes infinities and NaN as strings.
    (models.FloatField, "float8", ("number", "string")),
    (models.DecimalField, "text", None),
    (models.DateTimeField, "timestamptz", None),
    (models.TimeField, "time", None),
    (models.DurationField, "interval", None),
    (models.BinaryField, "bytea", None),
)


def value_sql(model_field: models.Field, row: str) -> str:
    """SQL for one field of `row` (a captured row as jsonb) as JSON-safe jsonb.

    The value is read back into its type and rendered by column_sql, the one rendering; a value
    json_safe and to_jsonb agree on is sent as captured (robust to a column retyped meanwhile).
    """
    x = f"({row} -> {literal(model_field.column)})"
    text = f"({x} #>> '{{}}')"
    if isinstance(model_field, models.FileField):
        return column_sql(model_field, text)
    kind = storage_field(model_field)
    for field_class, cast, json_types in READ_BACK:
        if isinstance(kind, field_class):
            rendered = column_sql(model_field, f"{text}::{cast}")
            if json_types is None:
                return rendered
            tested = ", ".join(literal(t) for t in json_types)
            return f"CASE WHEN jsonb_typeof({x}) IN ({tested}) THEN {rendered} ELSE {x} END"
    return x


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
