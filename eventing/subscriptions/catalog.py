"""The public event catalog: the types owners may subscribe to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from eventing.models import PublicEventType
from triggers.types import DB_TYPES, NAME_RE
from triggers.validation import validate_json_schema

# Most types one subscription may list.
MAX_TYPES = 100


def public_types() -> QuerySet[PublicEventType]:
    """The catalog as owners see it: public types, by name."""
    return PublicEventType.objects.filter(public=True).order_by("name")


def catalog_entry(entry: PublicEventType) -> dict[str, Any]:
    """What the catalog shows of one type (never its DB publishing rule)."""
    return {
        "name": entry.name,
        "description": entry.description,
        "version": entry.version,
        "schema": entry.schema,
        "example": entry.example,
    }


def validate_types(types: Any) -> list[str]:
    """A non-empty list of public type names, without repeats; ValidationError naming `types`."""
    if not isinstance(types, list) or not types:
        raise ValidationError({"types": "Give a non-empty list of event type names."})
    if len(types) > MAX_TYPES:
        raise ValidationError({"types": f"At most {MAX_TYPES} types per subscription."})
    if not all(isinstance(name, str) and NAME_RE.match(name) for name in types):
        raise ValidationError({"types": "Each type is a name of letters, digits, underscores."})
    known = set(public_types().filter(name__in=types).values_list("name", flat=True))
    unknown = sorted(set(types) - known)
    if unknown:
        raise ValidationError(
            {"types": f"Not in the event catalog: {', '.join(unknown)} (GET the catalog)."}
        )
    return list(dict.fromkeys(types))


def example_of(event_type: str) -> Any:
    """The catalog's example payload of a type, or a small marker payload when it has none."""
    entry = PublicEventType.objects.filter(name=event_type).first()
    if entry is None or entry.example is None:
        return {"test": True}
    return entry.example


def validate_public_type(entry: PublicEventType) -> None:
    """A catalog entry that can work: its schema, and a DB rule that names its payload."""
    if entry.schema is not None:
        validate_json_schema(entry.schema)
    if not entry.db_type:
        return
    if entry.db_type not in DB_TYPES:
        raise ValidationError({"db_type": f"One of {', '.join(sorted(DB_TYPES))}, or empty."})
    if not entry.db_source:
        raise ValidationError({"db_source": "Name the model (app_label.ModelName)."})
    if not entry.owner_path:
        raise ValidationError({"owner_path": "Name the field holding the owner's key."})
    # Never a raw row by accident: the published payload lists its fields.
    if not entry.payload_fields or not isinstance(entry.payload_fields, list):
        raise ValidationError({"payload_fields": "List the fields sent to owners."})


def names(entries: Iterable[PublicEventType]) -> list[str]:
    """The names of catalog entries."""
    return [entry.name for entry in entries]
