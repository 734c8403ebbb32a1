"""Space Cloud's event schemas (GraphQL SDL) as the JSON Schema an EventType holds.

Space Cloud validates a queued payload against the SDL type named like the event type
(gateway/modules/eventing/eventing.go, SetSchemaConfig) with its database schema rules
(gateway/modules/schema/helpers): unknown fields are refused, `!` fields are required (an `ID!`
is generated when missing, so it is not), `@default` fills a missing field, a null optional
field passes, and a field of another type of the same SDL is a nested object. Only those
kinds are converted; anything else is refused with a message naming where, never guessed.
"""

from __future__ import annotations

from typing import Any

from . import defaults

# Space Cloud's scalar names (gateway/model/schema_type.go) that events use.
SCALARS: dict[str, dict[str, Any]] = {
    "ID": {"type": "string"},
    "String": {"type": "string"},
    "Integer": {"type": "integer"},
    "Int": {"type": "integer"},
    "Float": {"type": "number"},
    "Boolean": {"type": "boolean"},
    # Space Cloud takes an RFC 3339 string or milliseconds since the epoch.
    "DateTime": {"type": ["string", "number"], "format": "date-time"},
    # A JSON field takes an object (a list only when the field is a list).
    "JSON": {"type": "object"},
}
# Directives that describe storage (keys, indexes, sizes) and do not change what a payload may
# hold; @default is handled (the field is optional and gets a JSON Schema default).
HARMLESS_DIRECTIVES = frozenset({"primary", "unique", "index", "size", "args", "foreign"})
# Tokens a schema may hold: far more than any real event schema, and it bounds parsing.
MAX_TOKENS = 20_000


MISSING = object()


class SDLError(ValueError):
    """Why an SDL schema cannot be converted; the message names the type and field."""


def graphql_core():
    """The graphql-core package (an optional dependency), or SDLError saying how to get it."""
    try:
        import graphql
    except ImportError:
        raise SDLError("GraphQL schemas need graphql-core (pip install graphql-core).") from None
    return graphql


def sdl_to_json_schema(sdl: str, type_name: str) -> dict[str, Any]:
    """The JSON Schema of the SDL type `type_name`, with the types it uses under `$defs`.

    Raises SDLError for input that is too large, does not parse, or uses anything Space Cloud's
    event schemas do not (unions, interfaces, enums, field arguments, other directives).
    """
    limit = defaults.max_schema_bytes()
    if not isinstance(sdl, str):
        raise SDLError("The schema must be GraphQL SDL text.")
    if len(sdl.encode()) > limit:
        raise SDLError(f"The SDL is over {limit} bytes (EVENTING['MAX_SCHEMA_BYTES']).")
    gql = graphql_core()
    try:
        document = gql.parse(sdl, no_location=True, max_tokens=MAX_TOKENS)
    except RecursionError:
        raise SDLError("The SDL is nested too deeply.") from None
    except Exception as exc:  # noqa: BLE001 - GraphQLError without importing graphql at the top
        raise SDLError(f"The SDL does not parse: {str(exc).splitlines()[0]}") from None
    types = object_types(document, gql)
    if type_name not in types:
        raise SDLError(
            f"The SDL has no type named {type_name!r} (Space Cloud validates a payload against "
            "the type named like the event type)."
        )
    converted = {name: object_schema(name, node, types, gql) for name, node in types.items()}
    schema = dict(converted[type_name])
    used = sorted(referenced(type_name, types, gql))
    if used:
        schema["$defs"] = {name: converted[name] for name in used}
    return schema


def object_types(document, gql) -> dict[str, Any]:
    """Name → definition of every `type` in the document; SDLError for any other definition."""
    types: dict[str, Any] = {}
    for node in document.definitions:
        if not isinstance(node, gql.ObjectTypeDefinitionNode):
            kind = type(node).__name__.removesuffix("Node")
            name = getattr(getattr(node, "name", None), "value", "")
            raise SDLError(
                f"{kind} {name}".strip() + " is not supported: Space Cloud event schemas are "
                "object types only (no unions, interfaces, enums, inputs or extensions)."
            )
        name = node.name.value
        if node.interfaces:
            raise SDLError(f"type {name}: implementing interfaces is not supported.")
        if node.directives:
            raise SDLError(f"type {name}: directives on a type are not supported.")
        if name in types:
            raise SDLError(f"type {name} is defined twice.")
        types[name] = node
    return types


def object_schema(name: str, node, types: dict[str, Any], gql) -> dict[str, Any]:
    """One object type: its fields as properties, unknown fields refused."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in node.fields or ():
        where = f"{name}.{field.name.value}"
        if field.arguments:
            raise SDLError(f"{where}: field arguments are not supported.")
        default = field_default(field, where, gql)
        schema = type_schema(field.type, where, types, gql, nullable=True)
        named = named_type(field.type, gql)
        if default is not MISSING:
            schema["default"] = default
        elif isinstance(field.type, gql.NonNullTypeNode) and named != "ID":
            required.append(field.name.value)
        properties[field.name.value] = schema
    result: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        result["required"] = required
    return result


def field_default(field, where: str, gql) -> Any:
    """The value of a field's @default, MISSING without one; SDLError for other directives."""
    default = MISSING
    for directive in field.directives or ():
        directive_name = directive.name.value
        if directive_name in HARMLESS_DIRECTIVES:
            continue
        if directive_name != "default":
            raise SDLError(
                f"{where}: @{directive_name} is not supported (only "
                f"{', '.join('@' + d for d in sorted(HARMLESS_DIRECTIVES))} and @default)."
            )
        values = [arg.value for arg in directive.arguments or () if arg.name.value == "value"]
        if not values:
            raise SDLError(f"{where}: @default needs a value.")
        if isinstance(values[0], gql.VariableNode):
            raise SDLError(f"{where}: @default cannot take a variable.")
        default = gql.value_from_ast_untyped(values[0])
    return default


def type_schema(node, where: str, types, gql, *, nullable: bool) -> dict[str, Any]:
    """The JSON Schema of a GraphQL type reference; a nullable one also takes null."""
    if isinstance(node, gql.NonNullTypeNode):
        return type_schema(node.type, where, types, gql, nullable=False)
    if isinstance(node, gql.ListTypeNode):
        schema = {
            "type": "array",
            "items": type_schema(node.type, where, types, gql, nullable=True),
        }
    else:
        name = node.name.value
        if name in SCALARS:
            schema = dict(SCALARS[name])
        elif name in types:
            schema = {"$ref": f"#/$defs/{name}"}
        else:
            raise SDLError(
                f"{where}: type {name!r} is neither a Space Cloud scalar "
                f"({', '.join(SCALARS)}) nor a type of this SDL."
            )
    return or_null(schema) if nullable else schema


def or_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` that also accepts null (Space Cloud lets an optional field be null)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


def named_type(node, gql) -> str:
    """The name at the bottom of a type reference (`[Item!]!` → Item)."""
    while not isinstance(node, gql.NamedTypeNode):
        node = node.type
    return node.name.value


def referenced(start: str, types: dict[str, Any], gql) -> set[str]:
    """The SDL types a payload of `start` holds as fields (`start` too, when it recurses)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for field in types[todo.pop()].fields or ():
            name = named_type(field.type, gql)
            if name in types and name not in seen:
                seen.add(name)
                todo.append(name)
    return seen
