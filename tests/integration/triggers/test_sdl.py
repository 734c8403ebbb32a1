"""Space Cloud's GraphQL SDL event schemas as JSON Schema: what payloads each one accepts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from eventing.recording.payload_rules import check_against_schema
from triggers.models import EventType
from triggers.sdl import SDLError, sdl_to_json_schema

ORDER_SDL = """
type order_placed {
  id: ID! @primary
  total: Float!
  quantity: Integer @default(value: 1)
  tags: [String!]
  placed_at: DateTime!
  extra: JSON
  customer: customer!
  lines: [line!]!
}
type customer { name: String!, email: String @unique }
type line { sku: String! @size(value: 50), count: Int! }
type unrelated { x: Boolean }
"""
VALID = {
    "total": 12.5,
    "placed_at": "2026-11-27T10:00:00Z",
    "customer": {"name": "Ada"},
    "lines": [{"sku": "A-1", "count": 2}],
}


def problem(schema: dict, payload) -> str | None:
    """The path of what the payload check refuses, or None when it accepts the payload."""
    try:
        check_against_schema("order_placed", schema, payload)
    except ValidationError as exc:
        return next(iter(exc.message_dict))
    return None


@pytest.fixture(scope="module")
def order_schema() -> dict:
    return sdl_to_json_schema(ORDER_SDL, "order_placed")


@pytest.mark.django_db
def test_converted_schema_is_one_an_event_type_may_hold(order_schema):
    EventType(name="order_placed", schema=order_schema).full_clean()
    assert sorted(order_schema["$defs"]) == ["customer", "line"]  # unrelated types left out
    assert order_schema["required"] == ["total", "placed_at", "customer", "lines"]
    assert order_schema["properties"]["quantity"]["default"] == 1


@pytest.mark.parametrize(
    ("change", "refused_at"),
    [
        ({}, None),
        ({"id": "ord_1", "tags": ["a"], "extra": {"k": [1]}, "quantity": 3}, None),
        ({"tags": None, "extra": None, "quantity": None}, None),  # optional fields may be null
        ({"placed_at": 1764237600000}, None),  # Space Cloud also takes milliseconds
        ({"colour": "red"}, "payload"),  # unknown fields are refused, as in Space Cloud
        ({"total": "12.50"}, "payload.total"),
        ({"total": None}, "payload.total"),  # a required field may not be null
        ({"quantity": 1.5}, "payload.quantity"),
        ({"tags": ["a", None]}, "payload.tags[1]"),
        ({"extra": [1, 2]}, "payload.extra"),
        ({"customer": {"name": "Ada", "age": 3}}, "payload.customer"),
        ({"customer": {}}, "payload.customer"),
        ({"lines": [{"sku": "A-1"}]}, "payload.lines[0]"),
        ({"lines": "A-1"}, "payload.lines"),
    ],
)
def test_payloads_accepted_and_refused(order_schema, change, refused_at):
    assert problem(order_schema, {**VALID, **change}) == refused_at


def test_required_fields_but_not_an_id(order_schema):
    for field in ("total", "placed_at", "customer", "lines"):
        payload = {k: v for k, v in VALID.items() if k != field}
        assert problem(order_schema, payload) == "payload"
    # Space Cloud generates a missing ID! rather than refusing the event.
    assert problem(order_schema, VALID) is None


def test_recursive_types_terminate():
    schema = sdl_to_json_schema("type node { name: String!, children: [node!] }", "node")
    tree = {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]}
    assert problem(schema, tree) is None
    assert problem(schema, {"name": "a", "children": [{"children": []}]}) is not None


@pytest.mark.parametrize(
    ("sdl", "words"),
    [
        ("union reason = a | b\ntype a { x: Int }\ntype t { x: Int }", "UnionTypeDefinition"),
        ("interface named { name: String }\ntype t implements named { name: String }", "Interface"),
        ("type t implements named { name: String }", "implementing interfaces"),
        ("enum colour { RED }\ntype t { c: colour }", "EnumTypeDefinition colour"),
        ("input i { x: Int }\ntype t { x: Int }", "InputObjectTypeDefinition"),
        ("scalar Money\ntype t { x: Money }", "ScalarTypeDefinition"),
        ('type t { a: Int @link(table: "x", from: "id", to: "id") }', "t.a: @link"),
        ("type t { a: DateTime @createdAt }", "t.a: @createdAt"),
        ("type t { a: Int @anything }", "t.a: @anything"),
        ("type t @key { a: Int }", "directives on a type"),
        ("type t { a(limit: Int): Int }", "t.a: field arguments"),
        ("type t { a: Money }", "t.a: type 'Money'"),
        ("type t { a: Int @default }", "@default needs a value"),
        ("type t { a: Int }\ntype t { b: Int }", "defined twice"),
        ("type other { a: Int }", "no type named 't'"),
        ("type t { a: Int", "does not parse"),
        ("type t { a: " + "[" * 2000 + "Int" + "]" * 2000 + " }", "does not parse"),
    ],
)
def test_unsupported_sdl_is_refused_naming_where(sdl, words):
    with pytest.raises(SDLError) as info:
        sdl_to_json_schema(sdl, "t")
    assert words in str(info.value)


def test_input_size_is_bounded():
    fields = "\n".join(f"  field_{i}: String" for i in range(200))
    sdl = f"type t {{\n{fields}\n}}"
    assert sdl_to_json_schema(sdl, "t")["type"] == "object"
    small = {"SECRETS": ["s" * 32], "MAX_SCHEMA_BYTES": 1000}
    with override_settings(EVENTING=small), pytest.raises(SDLError, match="MAX_SCHEMA_BYTES"):
        sdl_to_json_schema(sdl, "t")
