"""A Space Cloud project's eventing configuration as this project's triggers and event types.

Reads what `space-cli get` prints (a stream of `{api, type, meta, spec}` objects, one per
trigger, rule, schema and the eventing config: space-cli/cmd/modules/eventing/getters.go) or a
gateway config file's project (`eventingTriggers`, `eventingRules`, `eventingSchemas`,
`eventingConfig`: gateway/config/config.go). The result is the plain data
`eventing_triggers import` applies, plus a line for every field that could not be mapped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps

from . import types
from .sdl import SDLError, sdl_to_json_schema

# Space Cloud's own defaults (gateway/modules/eventing/handle_staged.go): 0 means "not set".
SC_DEFAULT_RETRIES = 3
SC_DEFAULT_TIMEOUT_MS = 5000
# Rules that mean the same here; any other rule (match, and, or, webhook, query, …) cannot be
# expressed as a queue rule.
QUEUE_RULES = {"allow": "allow", "deny": "deny", "authenticated": "authenticated"}
# Space Cloud's fallback rule, and ours.
DEFAULT_RULE = "default"
# What space-cli's `api` paths name, by the kind of object they hold.
API_RE = re.compile(r"/eventing/(triggers|rules|schema|config)(?:/|$)")
API_KINDS = {"triggers": "trigger", "rules": "rule", "schema": "schema", "config": "config"}
# A gateway config's project: its keys, by kind.
PROJECT_KEYS = {
    "eventingTriggers": "trigger",
    "eventingRules": "rule",
    "eventingSchemas": "schema",
}
# Space Cloud's request templates are Go templates; ours are Jinja2 (docs/transforms.md).
TEMPLATE_NOTE = (
    "Space Cloud's Go templates are not converted; rewrite them as the trigger's request "
    "transform (Jinja2, docs/transforms.md)"
)
# Trigger fields no trigger here can hold, and why (the report says so).
UNMAPPED_TRIGGER_FIELDS = {
    "template": TEMPLATE_NOTE,
    "requestTemplate": TEMPLATE_NOTE,
    "outputFormat": TEMPLATE_NOTE,
    # Space Cloud signs an `Authorization` token per call from this template.
    "claims": "tokens are not templated here; the Authorization token carries Space Cloud's "
    "fixed claims (id, role: SpaceCloud)",
    "filter": "Space Cloud's rule filters do not translate; set the trigger's filter by hand",
}


@dataclass
class Converted:
    """Data for `eventing_triggers import`, and what could not be mapped."""

    event_types: list[dict[str, Any]] = field(default_factory=list)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    # "<kind> <id>: <field>: <why>" for every field (or object) left out.
    unmapped: list[str] = field(default_factory=list)
    # Mappings worth knowing that lose nothing (a renamed trigger, objects of other modules).
    notes: list[str] = field(default_factory=list)

    def skip(self, where: str, name: str, why: str) -> None:
        """Record a field (or object) that was not mapped."""
        self.unmapped.append(f"{where}: {name}: {why}")


@dataclass
class Collected:
    """The eventing objects of an export, by kind, keyed by their Space Cloud id."""

    triggers: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    config: dict[str, Any] | None = None

    def add(self, kind: str, object_id: str, spec: dict[str, Any]) -> None:
        """File one object under its kind."""
        if kind == "config":
            self.config = spec
        else:
            {"trigger": self.triggers, "rule": self.rules, "schema": self.schemas}[kind][
                object_id
            ] = spec


def convert(documents: list[Any], *, file_storage: str = "default") -> Converted:
    """Map the parsed documents of an export; raises ValueError when they are not one."""
    result = Converted()
    collected = collect(documents, result)
    rules = sorted(collected.rules.items())
    queue_rules = {rule_id: map_rule(rule_id, spec, result) for rule_id, spec in rules}
    for type_id in sorted(set(collected.rules) | set(collected.schemas)):
        item = map_event_type(type_id, collected.schemas.get(type_id), queue_rules, result)
        if item:
            result.event_types.append(item)
    for trigger_id, spec in sorted(collected.triggers.items()):
        item = map_trigger(trigger_id, spec, result, file_storage)
        if item:
            result.triggers.append(item)
    if collected.config is not None:
        map_config(collected.config, result)
    return result


def collect(documents: list[Any], result: Converted) -> Collected:
    """The eventing objects of space-cli spec objects or of gateway config projects."""
    collected = Collected()
    for index, document in enumerate(documents):
        if document is None:
            continue  # an empty document between two `---`
        if not isinstance(document, dict):
            raise ValueError(f"document {index + 1}: expected an object.")
        if "api" in document:
            collect_spec_object(document, index, collected, result)
        elif any(key in document for key in (*PROJECT_KEYS, "eventingConfig")):
            collect_project(document, collected)
        elif isinstance(document.get("projects"), dict):
            # A whole gateway config: its projects keyed by id; one of them is one project here.
            projects = document["projects"]
            if len(projects) != 1:
                raise ValueError(
                    f"document {index + 1} holds {len(projects)} projects "
                    f"({', '.join(map(str, projects)) or 'none'}); export the one to import."
                )
            project = next(iter(projects.values()))
            if not isinstance(project, dict):
                raise ValueError(f"document {index + 1}: the project must be an object.")
            collect_project(project, collected)
        else:
            raise ValueError(
                f"document {index + 1}: neither a space-cli object (api, meta, spec) nor a "
                "Space Cloud project (eventingTriggers, eventingRules, eventingSchemas)."
            )
    return collected


def collect_spec_object(
    document: dict[str, Any], index: int, collected: Collected, result: Converted
) -> None:
    """One `{api, type, meta, spec}` object of space-cli."""
    api = str(document.get("api", ""))
    meta = document.get("meta") or {}
    object_id = str(meta.get("id", "")) if isinstance(meta, dict) else ""
    match = API_RE.search(api)
    if not match:
        result.notes.append(f"ignored {api or '(no api)'}: not eventing")
        return
    spec = document.get("spec")
    if not isinstance(spec, dict) or not object_id:
        raise ValueError(f"document {index + 1} ({api}): needs meta.id and an object spec.")
    collected.add(API_KINDS[match.group(1)], object_id, spec)


def collect_project(project: dict[str, Any], collected: Collected) -> None:
    """The eventing maps of a gateway config project (keyed by resource id, each with an id)."""
    for key, kind in PROJECT_KEYS.items():
        objects = project.get(key) or {}
        if not isinstance(objects, dict):
            raise ValueError(f"{key} must be a map of resource id to object.")
        for resource_id, spec in objects.items():
            if not isinstance(spec, dict):
                raise ValueError(f"{key}.{resource_id} must be an object.")
            # Resource ids are clusterId--projectId--resourceType--id.
            object_id = str(spec.get("id") or str(resource_id).split("--")[-1])
            collected.add(kind, object_id, {k: v for k, v in spec.items() if k != "id"})
    if isinstance(project.get("eventingConfig"), dict):
        collected.config = project["eventingConfig"]


def map_rule(rule_id: str, spec: dict[str, Any], result: Converted) -> str:
    """The queue rule for an eventing rule; `deny` (and a report line) for any other rule."""
    where = f"rule {rule_id}"
    rule = spec.get("rule")
    extra = sorted(set(spec) - {"rule", "id"})
    if rule in QUEUE_RULES:
        for name in extra:
            result.skip(where, name, f"not part of a {rule!r} rule")
        return QUEUE_RULES[rule]
    parts = f" (with {', '.join(extra)})" if extra else ""
    result.skip(
        where,
        "rule",
        f"{rule!r}{parts} has no equivalent (allow, deny and authenticated map); imported as "
        "'deny': choose 'authenticated' or 'permission' in Mission Control",
    )
    return "deny"


def map_event_type(
    type_id: str, spec: dict[str, Any] | None, queue_rules: dict[str, str], result: Converted
) -> dict[str, Any] | None:
    """One EventType: the rule of `type_id` (else the default rule) and its schema."""
    item: dict[str, Any] = {"name": type_id}
    if type_id in queue_rules:
        item["queue_rule"] = queue_rules[type_id]
    if spec is not None:
        where = f"schema {type_id}"
        for name in sorted(set(spec) - {"schema", "id"}):
            result.skip(where, name, "not part of an event schema")
        try:
            item["schema"] = sdl_to_json_schema(spec.get("schema"), type_id)
        except SDLError as exc:
            result.skip(where, "schema", f"not imported: {exc}")
            if len(item) == 1:
                return None
        # An EventType row's own rule overrides `default`: keep what Space Cloud would apply.
        item.setdefault("queue_rule", queue_rules.get(DEFAULT_RULE, "deny"))
    return item


def map_trigger(
    trigger_id: str, spec: dict[str, Any], result: Converted, file_storage: str
) -> dict[str, Any] | None:
    """One Trigger, or None (with a report line) when its source cannot be found."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", trigger_id)
    if name != trigger_id:
        result.notes.append(f"trigger {trigger_id} is named {name} (letters, digits, _ only)")
    where = f"trigger {trigger_id}"
    event_type = spec.get("type")
    item: dict[str, Any] = {
        "name": name,
        "type": event_type,
        "url": spec.get("url"),
        "retries": spec.get("retries") or SC_DEFAULT_RETRIES,
        "timeout_ms": spec.get("timeout") or SC_DEFAULT_TIMEOUT_MS,
        # Space Cloud sends its signed token as `Authorization: Bearer` on every webhook call.
        "send_authorization": True,
    }
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        options = {}
        result.skip(where, "options", "not a map")
    if types.is_db_type(event_type):
        label = model_for_table(options.get("col"), where, result)
        if label is None:
            return None
        item["source"] = label
        options = {k: v for k, v in options.items() if k not in ("db", "col")}
    elif types.is_file_type(event_type):
        item["source"] = file_storage
    for option in sorted(options):
        result.skip(
            where,
            f"options.{option}",
            "queue options are not matched here; every event of the type reaches the trigger",
        )
    for key in sorted(set(spec) - {"type", "url", "retries", "timeout", "options", "id", "name"}):
        value = spec[key]
        if value in (None, "", {}, []):
            continue
        if key == "triggerType" and value == "external":
            continue  # what Space Cloud sets on every user-defined trigger
        why = UNMAPPED_TRIGGER_FIELDS.get(key, "no such setting here")
        result.skip(where, key, why)
    return item


def model_for_table(table: Any, where: str, result: Converted) -> str | None:
    """The label of the one installed model whose table is `table`; None with a report line."""
    if not table:
        result.skip(where, "options.col", "a DB trigger needs its table; trigger not imported")
        return None
    found = sorted(
        model._meta.label
        for model in apps.get_models()
        if model._meta.db_table == table and not model._meta.proxy
    )
    if len(found) == 1:
        return found[0]
    why = (
        f"no installed model has the table {table!r}; trigger not imported"
        if not found
        else f"several models have the table {table!r} ({', '.join(found)}); trigger not imported"
    )
    result.skip(where, "options.col", why)
    return None


def map_config(config: dict[str, Any], result: Converted) -> None:
    """The eventing config: nothing in it is a trigger's; say what it held."""
    where = "config"
    if config.get("dbAlias"):
        result.skip(
            where,
            "dbAlias",
            f"{config['dbAlias']!r}: event tables live in EVENTING['DATABASE'] (a Django alias)",
        )
    if config.get("enabled") is False:
        result.skip(where, "enabled", "eventing was off in Space Cloud; triggers import enabled")
    if config.get("internalRules"):
        result.skip(where, "internalRules", "Space Cloud's internal triggers have no equivalent")
