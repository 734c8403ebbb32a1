"""The trigger's fields, declared once, in groups: every list of them is generated from here.

Mission Control's fieldsets, the form's fields, the API serializer's fields, the columns the
trigger index reads, the export/import file and the order of validation (one validator per
group, triggers/validation.py) all come from `GROUPS`. A column added to `Trigger` without a
place here fails `tests/integration/triggers/test_fields.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import types

# Kind of trigger a group is used by; "custom" stands for every custom event type.
CUSTOM = "custom"
ALL_KINDS = (*types.DB_TYPES, *types.FILE_TYPES, CUSTOM, types.CRON)


@dataclass(frozen=True)
class FieldGroup:
    """Trigger fields that belong together: shown, validated and documented as one."""

    key: str
    # Heading of the group in Mission Control (None: the untitled first group).
    title: str | None
    fields: tuple[str, ...]
    # Kinds of trigger (event types, or CUSTOM) that use the group.
    kinds: tuple[str, ...]
    help: str = ""
    # Whether the trigger form hides the group's fields for the other kinds.
    hidden_elsewhere: bool = False

    def used_by(self, event_type: str) -> bool:
        """Whether a trigger of `event_type` uses this group."""
        return kind_of(event_type) in self.kinds


GROUPS: tuple[FieldGroup, ...] = (
    FieldGroup("identity", None, ("name", "description"), ALL_KINDS),
    FieldGroup(
        "matching",
        "What fires it",
        (
            "type",
            "source",
            "watch_fields",
            "payload_fields",
            "path_pattern",
            "filter",
            "send_actor",
        ),
        (*types.DB_TYPES, *types.FILE_TYPES, CUSTOM),
        "The events that fire the trigger: their type, source, and a filter on their data.",
    ),
    FieldGroup(
        "schedule",
        "Schedule (CRON)",
        ("cron_expression", "cron_timezone", "cron_payload", "cron_skip_missed", "cron_last_tick"),
        (types.CRON,),
        "When a CRON trigger fires and what each tick sends.",
        hidden_elsewhere=True,
    ),
    FieldGroup(
        "webhook",
        "Webhook",
        ("url", "headers", "send_authorization", "timeout_ms", "signing_secret"),
        ALL_KINDS,
        "Where the call goes, with which headers, how long it may take and how it is signed.",
    ),
    FieldGroup(
        "transform",
        "Request transform",
        (
            "transform_method",
            "transform_url",
            "transform_query",
            "transform_headers",
            "transform_body",
        ),
        ALL_KINDS,
        "Optional: shape the request with templates over the event (docs/transforms.md). "
        "Empty fields keep the CloudEvents POST.",
    ),
    FieldGroup(
        "retries",
        "Retries and timing",
        (
            "retries",
            "backoff_base_s",
            "backoff_max_s",
            "retry_policy",
            "retry_statuses",
            "circuit_failures",
            "delay_s",
        ),
        ALL_KINDS,
        "How failed attempts are retried, when the circuit opens, and the delay of every event.",
    ),
    FieldGroup(
        "delivery_control",
        "Order and endpoint protection",
        ("ordering_key", "rate_limit", "max_in_flight"),
        ALL_KINDS,
        "Ordered delivery per key, and caps on the rate and the concurrency of calls.",
    ),
    FieldGroup(
        "state",
        "State",
        ("enabled", "paused", "paused_reason", "created_at", "updated_at"),
        ALL_KINDS,
        "Whether events are recorded and delivered now.",
    ),
)

# Kept by Eventing, never written by a user: shown by the API, left out of forms and exports.
READ_ONLY = ("cron_last_tick", "created_at", "updated_at")
# Set by what happens at run time (a 410 pausing the trigger): not part of an export.
RUNTIME = ("paused_reason",)
# Credentials: exported only when asked for, shown only to users who may change the trigger.
SECRETS = ("signing_secret",)
# Chosen in the form through its kind, custom type, model or storage (mission_control.forms).
CHOSEN_BY_KIND = ("type", "source")

# Fields only some kinds of trigger use, within a group the others use too: the trigger form
# shows them for these kinds only.
FIELD_KINDS: dict[str, tuple[str, ...]] = {
    "watch_fields": (types.DB_UPDATE,),
    "payload_fields": types.DB_TYPES,
    "path_pattern": types.FILE_TYPES,
    "send_actor": types.DB_TYPES,
}

# A value set on a field that the trigger's type does not use is refused with these words.
ONLY_FOR: dict[str, tuple[tuple[str, ...], str]] = {
    "watch_fields": (FIELD_KINDS["watch_fields"], "Watched fields only apply to DB_UPDATE."),
    "payload_fields": (FIELD_KINDS["payload_fields"], "Payload fields only apply to DB types."),
    "path_pattern": (FIELD_KINDS["path_pattern"], "A path pattern only applies to FILE types."),
    "cron_expression": ((types.CRON,), "A cron expression only applies to CRON."),
}

# What matching and recording read of a trigger (triggers.registry.TriggerSpec), in order.
SPEC_FIELDS = (
    "id",
    "name",
    "type",
    "source",
    "filter",
    "watch_fields",
    "payload_fields",
    "path_pattern",
    "delay_s",
    "send_actor",
    "ordering_key",
)


def kind_of(event_type: str) -> str:
    """The kind of a trigger of `event_type`: the type itself if built in, else CUSTOM."""
    if event_type in types.BUILTIN_TYPES or event_type == types.CRON:
        return event_type
    return CUSTOM


def group(key: str) -> FieldGroup:
    """The group named `key`."""
    for candidate in GROUPS:
        if candidate.key == key:
            return candidate
    raise LookupError(f"No trigger field group {key!r}.")


def declared_fields() -> tuple[str, ...]:
    """Every declared field, in group order."""
    return tuple(name for candidate in GROUPS for name in candidate.fields)


def _without(names: Iterable[str], *excluded: tuple[str, ...]) -> tuple[str, ...]:
    left_out = {name for names_ in excluded for name in names_}
    return tuple(name for name in names if name not in left_out)


def form_fields() -> tuple[str, ...]:
    """Model fields Mission Control's form edits as they are."""
    return _without(declared_fields(), READ_ONLY, SECRETS, CHOSEN_BY_KIND)


def serializer_fields() -> tuple[str, ...]:
    """Model fields of the API's trigger representation (read-only ones included)."""
    return declared_fields()


def export_fields() -> tuple[str, ...]:
    """Fields kept in an export file; the signing secret only with --include-secrets."""
    return _without(declared_fields(), READ_ONLY, RUNTIME, SECRETS)


def form_visibility(extra: dict[str, tuple[str, ...]] | None = None) -> dict[str, list[str]]:
    """The kinds each field is shown for, for the fields the trigger form hides for others.

    `extra` maps a group key to more rows of it (read-only displays) that follow its fields.
    """
    shown = {name: list(kinds) for name, kinds in FIELD_KINDS.items()}
    for candidate in GROUPS:
        if candidate.hidden_elsewhere:
            rows = candidate.fields + (extra or {}).get(candidate.key, ())
            shown.update({name: list(candidate.kinds) for name in rows})
    return shown


def fieldsets(
    replace: dict[str, tuple[str, ...]] | None = None,
    extra: dict[str, tuple[str, ...]] | None = None,
    options: dict[str, dict] | None = None,
) -> tuple[tuple[str | None, dict], ...]:
    """Admin fieldsets, one per group.

    `replace` maps a field to what the page shows instead (an empty tuple hides it), `extra`
    a group key to read-only displays shown after its fields, `options` a group key to more
    fieldset options (classes, description).
    """
    replace, extra, options = replace or {}, extra or {}, options or {}
    result = []
    for candidate in GROUPS:
        shown = [
            name for field in candidate.fields for name in replace.get(field, (field,))
        ] + list(extra.get(candidate.key, ()))
        result.append((candidate.title, {**options.get(candidate.key, {}), "fields": tuple(shown)}))
    return tuple(result)
