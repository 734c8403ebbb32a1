"""JSON Schemas of event types: refused when saved unless self-contained, terminating, bounded."""

import pytest
from django.core.exceptions import ValidationError

from triggers.models import EventType
from triggers.validation import MAX_SCHEMA_DEPTH, validate_json_schema

pytestmark = pytest.mark.django_db


def schema_error(schema) -> str:
    with pytest.raises(ValidationError) as info:
        EventType(name="checked", schema=schema).full_clean()
    return " ".join(info.value.message_dict["schema"])


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"$ref": "http://127.0.0.1:9/schema.json"}, "points outside the schema"),
        ({"$ref": "file:///etc/passwd"}, "points outside the schema"),
        ({"properties": {"a": {"$ref": "https://example.com/a.json#/x"}}}, "nothing is ever"),
        ({"$ref": "other.json"}, "points outside the schema"),
        ({"$ref": "#"}, "refers to itself"),
        ({"allOf": [{"$ref": "#/$defs/a"}], "$defs": {"a": {"anyOf": [{"$ref": "#"}]}}}, "itself"),
        ({"not": {"$ref": "#/not"}}, "refers to itself"),
        ({"$ref": "#/$defs/missing"}, "points to nothing"),
        ({"$ref": "#anchor"}, "JSON Pointer"),
        ({"$dynamicRef": "#meta"}, "not supported"),
        ({"$defs": {"a": {"$id": "http://127.0.0.1/a.json"}}}, "only the root"),
        ({"$schema": "http://json-schema.org/draft-03/schema#"}, "not a supported draft"),
        ({"$schema": "http://127.0.0.1/my-meta"}, "not a supported draft"),
        ({"pattern": "(unclosed"}, "Invalid JSON Schema"),
        ({"unevaluatedProperties": False, "patternProperties": {"^a": {}}}, "cannot be combined"),
        ({"enum": ["a\x00"]}, "NUL"),
        (["not", "an", "object"], "is an object"),
    ],
)
def test_unsafe_schemas_are_refused_on_save(schema, words):
    assert words in schema_error(schema)


def test_recursion_that_descends_into_the_payload_is_accepted():
    tree = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#"}}},
        "$defs": {"leaf": {"$ref": "#/$defs/name"}, "name": {"type": "string"}},
    }
    EventType(name="tree", schema=tree).full_clean()


def test_local_references_in_every_supported_draft_are_accepted():
    for draft, defs in [
        ("http://json-schema.org/draft-04/schema#", "definitions"),
        ("http://json-schema.org/draft-07/schema#", "definitions"),
        ("https://json-schema.org/draft/2019-09/schema", "$defs"),
        ("https://json-schema.org/draft/2020-12/schema", "$defs"),
    ]:
        schema = {
            "$schema": draft,
            "properties": {"a b": {"$ref": f"#/{defs}/a%20b"}, "$ref": {"type": "string"}},
            defs: {"a b": {"type": "integer"}},
        }
        EventType(name="drafts", schema=schema).full_clean()


def test_schema_size_and_depth_are_bounded(settings):
    settings.EVENTING = {**settings.EVENTING, "MAX_SCHEMA_BYTES": 100}
    assert "over 100 bytes" in schema_error({"description": "x" * 200})
    settings.EVENTING = {**settings.EVENTING, "MAX_SCHEMA_BYTES": 64 * 1024}
    deep: dict = {}
    node = deep
    for _ in range(MAX_SCHEMA_DEPTH + 1):
        node["items"] = {}
        node = node["items"]
    assert "nested deeper" in schema_error(deep)


def test_no_schema_is_fine():
    validate_json_schema(None)
    validate_json_schema({})
    validate_json_schema(True)
