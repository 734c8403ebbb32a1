"""JSON-safe values and the `data` of DB events."""

from __future__ import annotations

import base64
import datetime
import decimal
import math
import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import DecimalField
from django.db.models.fields.files import FieldFile

from eventing.conf import settings

# Integers beyond this lose precision in JavaScript and most JSON parsers.
MAX_SAFE_INT = 2**53 - 1


def json_safe(value: Any) -> Any:
    """Turn a model field value into something every JSON parser reads back unchanged."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INT <= value <= MAX_SAFE_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, FieldFile):
        return value.name or None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    return str(value)


def row_values(instance, fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON-safe values of an instance's concrete fields (all, or only `fields`)."""
    values = {}
    for field in instance._meta.concrete_fields:
        if fields and field.name not in fields:
            continue
        values[field.name] = json_safe(normalized(field, field.value_from_object(instance)))
    return values


def sensitive_fields(model: type) -> frozenset[str]:
    """Fields of `model` left out of DB event data unless a trigger lists them in payload_fields.

    `AbstractBaseUser.password` and every field named in `EVENTING["EXCLUDE_FIELDS"]`
    (case-insensitively): a webhook receiver and the event log should not hold credentials.
    """
    excluded = {name.lower() for name in settings.EXCLUDE_FIELDS}
    names = {f.name for f in model._meta.concrete_fields if f.name.lower() in excluded}
    if issubclass(model, AbstractBaseUser):
        names.add("password")
    return frozenset(names)


def without(values: dict[str, Any] | None, names: frozenset[str]) -> dict[str, Any] | None:
    """A row snapshot minus the fields in `names` (None stays None)."""
    if values is None or not names:
        return values
    return {name: value for name, value in values.items() if name not in names}


def normalized(field, value: Any) -> Any:
    """The value as the database stores it, so an in-memory row compares equal to a loaded one
    (Decimal("0") vs Decimal("0.00"), "12.5" assigned to a DecimalField)."""
    if value is None or isinstance(value, FieldFile):
        return value
    if isinstance(field, DecimalField):
        try:
            value = field.to_python(value)
        except ValidationError:
            return value
        if field.decimal_places is not None and value.is_finite():
            return value.quantize(decimal.Decimal(1).scaleb(-field.decimal_places))
    return value


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the fields whose values differ between two row snapshots."""
    return [name for name, value in new.items() if old.get(name) != value]


def db_data(
    *, using: str, instance, old: dict | None, new: dict | None, changed: list[str] | None
) -> dict[str, Any]:
    """The `data` of a DB event, as the wire format fixes it."""
    meta = instance._meta
    data = {
        "db": using,
        "model": meta.label,
        "table": meta.db_table,
        "pk": json_safe(instance.pk),
        "old": old,
        "new": new,
    }
    if changed is not None:
        data["changed"] = changed
    return data
