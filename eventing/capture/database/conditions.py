"""Trigger filters and watch lists in SQL, with `triggers.matching` semantics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import models

from eventing.capture.database.render import minus
from eventing.capture.database.sql import jsonb_literal, literal, text_array
from triggers import types

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriggerConfig:
    """What a generated function bakes in of one trigger."""

    id: int
    name: str
    filter: dict
    watch_fields: tuple[str, ...]
    payload_fields: tuple[str, ...]


# --- filters in SQL (triggers.matching semantics) -------------------------------------------


def lookup_sql(base: str, path: list[str]) -> str:
    """`base #> path`, NULL where Python's lookup finds nothing (it only walks objects)."""
    if not path:
        return base
    guards = []
    for index, part in enumerate(path):
        # #> indexes arrays by number; Python's lookup never does.
        if part.lstrip("-").isdigit():
            guards.append(f"jsonb_typeof({base} #> {text_array(path[:index])}) = 'object'")
    found = f"({base} #> {text_array(path)})"
    return f"CASE WHEN {' AND '.join(guards)} THEN {found} END" if guards else found


def equals_sql(x: str, value: Any) -> str:
    """`x == value` as Python compares JSON values (True == 1, 1 == 1.0)."""
    if value is None:
        return f"({x} = 'null'::jsonb)"
    if isinstance(value, (bool, int, float)):
        number = repr(float(value)) if isinstance(value, float) else str(int(value))
        tests = [f"(jsonb_typeof({x}) = 'number' AND ({x})::numeric = {literal(number)}::numeric)"]
        if value == 1:
            tests.append(f"({x} = 'true'::jsonb)")
        elif value == 0:
            tests.append(f"({x} = 'false'::jsonb)")
        return "(" + " OR ".join(tests) + ")"
    return f"({x} = {jsonb_literal(value)})"


def member_sql(x: str, operand: Any) -> str:
    """`x in operand` (a list: membership; a string: substring; an object: key)."""
    if isinstance(operand, list):
        if not operand:
            return "FALSE"
        return "(" + " OR ".join(equals_sql(x, item) for item in operand) + ")"
    if isinstance(operand, str):
        return f"(jsonb_typeof({x}) = 'string' AND strpos({literal(operand)}, {x} #>> '{{}}') > 0)"
    if isinstance(operand, dict):
        keys = text_array(operand) if operand else "ARRAY[]::text[]"
        return f"(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') = ANY({keys}))"
    return "FALSE"


def clause_sql(x: str, expected: Any) -> str:
    """One filter entry (`triggers.matching._matches_one`) as a boolean that is never NULL."""
    present = f"({x} IS NOT NULL)"
    if isinstance(expected, list):
        test = f"({present} AND {member_sql(x, expected)})"
    elif isinstance(expected, dict):
        tests = []
        for op, operand in expected.items():
            if op == "in":
                tests.append(f"({present} AND {member_sql(x, operand)})")
            elif op == "not_in":
                tests.append(f"(NOT {present} OR NOT {member_sql(x, operand)})")
            elif op == "eq":
                tests.append(f"({present} AND {equals_sql(x, operand)})")
            elif op == "ne":
                tests.append(f"(NOT {present} OR NOT {equals_sql(x, operand)})")
            elif op == "exists":
                tests.append(present if operand else f"(NOT {present})")
        test = "(" + " AND ".join(tests or ["TRUE"]) + ")"
    else:
        test = f"({present} AND {equals_sql(x, expected)})"
    return f"COALESCE({test}, FALSE)"


def conditions_sql(
    event_type: str,
    model: type[models.Model],
    alias: str,
    trigger: TriggerConfig,
    hidden: frozenset[str],
) -> str:
    """The WHERE of one trigger's arm: its watch list, then its filter."""
    conditions = []
    if event_type == types.DB_UPDATE and trigger.watch_fields:
        conditions.append(f"(r.changed ?| {text_array(trigger.watch_fields)})")
    meta = model._meta
    roots = {
        "db": jsonb_literal(alias),
        "model": jsonb_literal(meta.label),
        "table": jsonb_literal(meta.db_table),
        "pk": "r.pk",
        "old": "'null'::jsonb" if event_type == types.DB_INSERT else minus("r.old_full", hidden),
        "new": "'null'::jsonb" if event_type == types.DB_DELETE else minus("r.new_full", hidden),
    }
    if event_type == types.DB_UPDATE:
        roots["changed"] = minus("r.changed", hidden)
    for path, expected in trigger.filter.items():
        head, *rest = path.split(".")
        # A key the data lacks: Python's lookup finds nothing there.
        actual = lookup_sql(roots[head], rest) if head in roots else "NULL::jsonb"
        conditions.append(clause_sql(actual, expected))
    return " AND ".join(conditions) if conditions else "TRUE"
