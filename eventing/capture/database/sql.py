"""SQL text: literals, identifiers and constants, never by string formatting of values."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# --- SQL text -------------------------------------------------------------------------------


def literal(text: str) -> str:
    """A SQL string literal read the same whatever standard_conforming_strings says."""
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def jsonb_literal(value: Any) -> str:
    """A jsonb constant."""
    return f"{literal(json.dumps(value, sort_keys=True))}::jsonb"


def text_array(names: Iterable[str]) -> str:
    """A text[] constant."""
    return "ARRAY[" + ", ".join(literal(n) for n in names) + "]::text[]"


@dataclass(frozen=True)
class Place:
    """Where one table's generated functions go, and what they name (each `schema.table`)."""

    schema: str
    # The table's columns and their SQL types, schema-qualified where not built in.
    column_types: dict[str, str]
    events_table: str
    captures_table: str
    triggers_table: str
