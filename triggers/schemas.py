"""JSON Schemas of event types: valid, self-contained, bounded, and sure to terminate."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

# Keywords whose subschemas apply to the same instance ("in place"): a cycle through these
# alone never ends ({"$ref": "#"}), whatever the payload.
IN_PLACE_ONE = ("not", "if", "then", "else")
IN_PLACE_MANY = ("allOf", "anyOf", "oneOf")
IN_PLACE_MAP = ("dependentSchemas",)
# Keywords whose subschemas apply to a part of the instance (an item, a property): recursion
# through them ends with the payload, whose depth payload_rules bounds.
CHILD_ONE = (
    "additionalItems",
    "additionalProperties",
    "contains",
    "contentSchema",
    "items",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
CHILD_MANY = ("items", "prefixItems")
CHILD_MAP = ("properties", "patternProperties")
# Not applied by themselves; walked so that a broken definition is refused too.
DEFINITIONS = ("$defs", "definitions")


# Deepest nesting of a schema document (objects and arrays); far beyond any real schema.
MAX_SCHEMA_DEPTH = 64


class SchemaProblem(Exception):
    """Why a JSON Schema is refused; the message names where."""


@lru_cache(maxsize=128)
def schema_problem(schema_json: str, limit: int) -> str | None:
    """What is wrong with the schema (given as its JSON text), or None; cached per text.

    Cached because the payload check asks again on every request queueing the type.
    """
    if len(schema_json.encode()) > limit:
        return f"The JSON Schema is over {limit} bytes of JSON (EVENTING['MAX_SCHEMA_BYTES'])."
    schema = json.loads(schema_json)
    try:
        check_schema_rules(schema)
    except SchemaProblem as exc:
        return str(exc)
    return None


def check_schema_rules(schema: Any) -> None:
    """Raise SchemaProblem unless `schema` is a valid, self-contained, terminating schema."""
    import jsonschema

    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaProblem("A JSON Schema is an object (or true / false).")
    if json_depth(schema) > MAX_SCHEMA_DEPTH:
        # jsonschema recurses (in Python) once per level, several frames each.
        raise SchemaProblem(f"The JSON Schema is nested deeper than {MAX_SCHEMA_DEPTH} levels.")
    validator_class = jsonschema.validators.validator_for(
        schema, default=None if "$schema" in schema else jsonschema.Draft202012Validator
    )
    if validator_class in (None, jsonschema.Draft3Validator):
        raise SchemaProblem(
            f"$schema {schema.get('$schema')!r} is not a supported draft; use draft-04 to "
            "2020-12, or leave $schema out for 2020-12."
        )
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "/".join(str(p) for p in exc.path) or "(root)"
        raise SchemaProblem(f"Invalid JSON Schema at {path}: {exc.message}") from None
    graph = SchemaGraph(schema, draft4=validator_class is jsonschema.Draft4Validator)
    graph.walk()
    graph.check_terminates()
    if graph.keywords_seen >= {"unevaluatedProperties", "patternProperties"}:
        # Payload checks match patterns with a time limit (eventing.recording.payload_rules), except
        # inside jsonschema's own unevaluatedProperties code, which calls `re` directly.
        raise SchemaProblem(
            "unevaluatedProperties cannot be combined with patternProperties in one schema; "
            "use additionalProperties."
        )


def json_depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return deepest


def check_pattern(pattern: str, where: str) -> None:
    """The payload check matches with the `regex` module (it has a timeout); it must compile."""
    import regex

    try:
        regex.compile(pattern)
    except regex.error as exc:
        raise SchemaProblem(
            f"{pattern!r} at {where} is not a valid regular expression: {exc}"
        ) from None


def escape_token(token: str | int) -> str:
    """One JSON Pointer segment (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


class SchemaGraph:
    """Every subschema of a schema, by JSON Pointer, and the in-place edges between them.

    A payload check never fetches anything, so every $ref must be a JSON Pointer into the
    schema itself ("#", "#/$defs/item"); a ref to a URL or a file is refused here, before
    anyone can make the web process fetch it. Nested $id would move the base of such
    pointers, so it is refused too.
    """

    def __init__(self, schema: dict, *, draft4: bool) -> None:
        self.root = schema
        self.id_keywords = ("$id", "id") if draft4 else ("$id",)
        self.nodes: dict[str, Any] = {}
        self.edges: dict[str, list[str]] = {}
        self.keywords_seen: set[str] = set()

    def walk(self) -> None:
        """Visit every subschema reachable from the root or a $ref; raise on a bad ref."""
        todo: list[tuple[str, Any]] = [("", self.root)]
        while todo:
            pointer, node = todo.pop()
            if pointer in self.nodes:
                continue
            self.nodes[pointer] = node
            edges = self.edges[pointer] = []
            if not isinstance(node, dict):
                continue  # true / false
            self.keywords_seen.update(node)
            for keyword, value in node.items():
                where = f"{pointer}/{escape_token(keyword)}"
                if keyword == "$ref":
                    target, contents = self.resolve(value, pointer or "/")
                    edges.append(target)
                    todo.append((target, contents))
                elif keyword in ("$dynamicRef", "$recursiveRef"):
                    raise SchemaProblem(
                        f"{keyword} at {pointer or '/'} is not supported; use $ref with a "
                        'JSON Pointer such as "#/$defs/node".'
                    )
                elif keyword == "pattern" and isinstance(value, str):
                    check_pattern(value, where)
                elif keyword == "patternProperties" and isinstance(value, dict):
                    for pattern in value:
                        check_pattern(pattern, f"{where}/{escape_token(pattern)}")
                elif keyword in self.id_keywords and pointer and isinstance(value, str):
                    raise SchemaProblem(
                        f"{keyword} at {pointer} is not supported: only the root may have one."
                    )
                for child, in_place in self.children(keyword, value, where):
                    if in_place:
                        edges.append(child[0])
                    todo.append(child)

    def children(self, keyword: str, value: Any, where: str):
        """((pointer, subschema), in_place) for the subschemas under one keyword."""
        if keyword in IN_PLACE_ONE:
            yield (where, value), True
        elif keyword in IN_PLACE_MANY and isinstance(value, list):
            for index, item in enumerate(value):
                yield (f"{where}/{index}", item), True
        elif keyword in IN_PLACE_MAP or keyword == "dependencies":
            for name, item in value.items() if isinstance(value, dict) else ():
                if isinstance(item, (dict, bool)):  # dependencies may also list names
                    yield (f"{where}/{escape_token(name)}", item), True
        elif keyword in CHILD_MANY and isinstance(value, list):
            for index, item in enumerate(value):
                yield (f"{where}/{index}", item), False
        elif keyword in CHILD_ONE and isinstance(value, (dict, bool)):
            yield (where, value), False
        elif keyword in CHILD_MAP + DEFINITIONS and isinstance(value, dict):
            for name, item in value.items():
                yield (f"{where}/{escape_token(name)}", item), False

    def resolve(self, ref: Any, where: str) -> tuple[str, Any]:
        """The canonical pointer and contents a local $ref names; SchemaProblem otherwise."""
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaProblem(
                f"$ref {ref!r} at {where} points outside the schema; only references into "
                'the schema itself ("#/$defs/name") are allowed: nothing is ever fetched.'
            )
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            raise SchemaProblem(
                f'$ref {ref!r} at {where}: use a JSON Pointer such as "#/$defs/name" '
                "(anchors are not supported)."
            )
        node, canonical = self.root, ""
        for raw in fragment.split("/")[1:] if fragment else ():
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                token = str(int(token))
                node = node[int(token)]
            else:
                raise SchemaProblem(f"$ref {ref!r} at {where} points to nothing in the schema.")
            canonical += f"/{escape_token(token)}"
        if not isinstance(node, (dict, bool)):
            raise SchemaProblem(f"$ref {ref!r} at {where} does not point to a schema.")
        return canonical, node

    def check_terminates(self) -> None:
        """Refuse a cycle of in-place applications ({"$ref": "#"}): it would never end."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for start in self.nodes:
            if start in state:
                continue
            stack = [(start, iter(self.edges[start]))]
            state[start] = 1
            while stack:
                node, pending = stack[-1]
                following = next(pending, None)
                if following is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(following) == 1:
                    raise SchemaProblem(
                        f"The schema at {following or '/'} refers to itself without descending "
                        'into the payload (e.g. {"$ref": "#"}): checking it would never end.'
                    )
                elif following not in state:
                    state[following] = 1
                    stack.append((following, iter(self.edges[following])))
