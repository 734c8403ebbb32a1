"""`eventing_triggers export|import`: triggers and event types as a file in version control.

`import --from-space-cloud` reads a Space Cloud project's eventing configuration instead
(triggers/space_cloud.py maps it) and applies it through the same validation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from eventing.capture.database import triggers_changing
from eventing.conf import settings
from eventing.management.yaml_files import load_yaml, yaml_module
from eventing.models import SUBSCRIPTION_TYPE
from triggers import fields as trigger_fields
from triggers import space_cloud
from triggers.masking import mask_headers, unmask_headers
from triggers.models import EventType, Trigger

FORMAT_VERSION = 1
# Fields kept in the file (triggers.fields): ids, timestamps, the last CRON tick and a pause's
# reason are runtime state; the signing secret goes in only with --include-secrets.
TRIGGER_FIELDS = trigger_fields.export_fields()
EVENT_TYPE_FIELDS = ("name", "description", "schema", "queue_rule")


class DryRun(Exception):
    """Raised inside the import transaction to roll it back."""


def file_format(path: str, requested: str | None) -> str:
    """json or yaml: as asked, else from the file extension, else json."""
    if requested:
        return requested
    return "yaml" if path.endswith((".yaml", ".yml")) else "json"


def export_data(include_secrets: bool) -> dict[str, Any]:
    """Every event type and trigger, sorted by name, as plain data.

    Without `include_secrets` credentials stay out of the file: no signing secret, and literal
    header values masked (importing the mask back keeps the stored value).
    """
    fields = TRIGGER_FIELDS + (trigger_fields.SECRETS if include_secrets else ())
    triggers = []
    # Owners' subscriptions deliver through triggers of their own: they belong to the owners
    # (and their API), not to an operators' export.
    for row in Trigger.objects.exclude(type=SUBSCRIPTION_TYPE).order_by("name"):
        item = {name: getattr(row, name) for name in fields}
        if not include_secrets:
            item["headers"] = mask_headers(item["headers"])
        triggers.append(item)
    return {
        "version": FORMAT_VERSION,
        "event_types": [
            {name: getattr(row, name) for name in EVENT_TYPE_FIELDS}
            for row in EventType.objects.order_by("name")
        ],
        "triggers": triggers,
    }


def unmasked(item: dict[str, Any], instance, where: str) -> dict[str, Any]:
    """`item` with masked header values replaced by the stored ones (an export without
    --include-secrets imports back unchanged); a mask with nothing stored is an error."""
    if "headers" not in item:
        return item
    try:
        headers = unmask_headers(item["headers"], instance.headers if instance else [])
    except ValidationError as exc:
        raise CommandError(f"{where} ({item['name']}): {' '.join(exc.messages)}") from None
    return {**item, "headers": headers}


def apply_item(model, fields: tuple[str, ...], item: Any, where: str) -> str:
    """Create or update one object from `item`; returns created, updated or unchanged."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise CommandError(f"{where}: each entry must be an object with a 'name'.")
    allowed = set(fields) | (set(trigger_fields.SECRETS) if model is Trigger else set())
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise CommandError(f"{where} ({item['name']}): unknown field(s) {', '.join(unknown)}.")
    instance = model.objects.filter(name=item["name"]).first()
    if model is Trigger:
        item = unmasked(item, instance, where)
    created = instance is None
    if created:
        instance = model()
    changed = [name for name, value in item.items() if getattr(instance, name, None) != value]
    if not created and not changed:
        return "unchanged"
    for name, value in item.items():
        setattr(instance, name, value)
    try:
        instance.full_clean()
    except ValidationError as exc:
        detail = "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
        )
        raise CommandError(f"{where} ({item['name']}): {detail}") from None
    instance.save()
    return "created" if created else "updated"


class Command(BaseCommand):
    """Export triggers and event types to JSON or YAML, or import them back (idempotent)."""

    help = (
        "Export triggers and event types to a file (JSON, or YAML with PyYAML), or import "
        "such a file: objects are matched by name, created or updated; running it twice "
        "changes nothing. Signing secrets and literal header values are exported only with "
        "--include-secrets (else header values are masked, and a masked value imports as the "
        "stored one); an imported trigger without a secret keeps its own (or gets a new one)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="Write every trigger and event type.")
        export.add_argument("-o", "--output", default="-", help="File to write (- for stdout).")
        export.add_argument("--format", choices=("json", "yaml"), help="Default: by extension.")
        export.add_argument(
            "--include-secrets",
            action="store_true",
            help="Also write each trigger's signing secret and literal header values.",
        )
        imp = sub.add_parser("import", help="Create or update from a file, by name.")
        imp.add_argument("file", help="File to read (- for stdin).")
        imp.add_argument("--format", choices=("json", "yaml"), help="Default: by extension.")
        imp.add_argument(
            "--dry-run", action="store_true", help="Report what would change and change nothing."
        )
        imp.add_argument(
            "--from-space-cloud",
            action="store_true",
            help="The file is a Space Cloud project's eventing configuration as space-cli "
            "prints it (YAML stream or JSON), or a gateway config; every field that cannot be "
            "mapped is reported.",
        )
        imp.add_argument(
            "--strict",
            action="store_true",
            help="With --from-space-cloud: if any field cannot be mapped, import nothing and "
            "exit non-zero.",
        )
        imp.add_argument(
            "--file-storage",
            default="default",
            help="With --from-space-cloud: the storage alias of FILE_* triggers (default: "
            "default).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "export":
            self.export(options)
        else:
            self.import_(options)

    def export(self, options: dict[str, Any]) -> None:
        """Write the file (or stdout)."""
        fmt = file_format(options["output"], options["format"])
        data = export_data(options["include_secrets"])
        if fmt == "yaml":
            text = yaml_module().safe_dump(data, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if options["output"] == "-":
            self.stdout.write(text, ending="")
        else:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(
                f"Exported {len(data['event_types'])} event type(s) and "
                f"{len(data['triggers'])} trigger(s) to {options['output']}."
            )

    def parse(self, path: str, fmt: str, *, stream: bool = False) -> Any:
        """The file's contents as data; with `stream`, every YAML document (a JSON list's items)."""
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        try:
            data = load_yaml(text, path, stream=stream) if fmt == "yaml" else json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise CommandError(f"{path} is not valid {fmt}: {exc}") from None
        if stream:
            return data if isinstance(data, list) else [data]
        return data

    def read(self, path: str, fmt: str) -> dict[str, Any]:
        """The parsed file, checked for its two lists."""
        data = self.parse(path, fmt)
        if not isinstance(data, dict):
            raise CommandError(f"{path}: expected an object with event_types and triggers.")
        for key in ("event_types", "triggers"):
            if not isinstance(data.get(key, []), list):
                raise CommandError(f"{path}: {key} must be a list.")
        return data

    def read_space_cloud(self, path: str, options: dict[str, Any]) -> space_cloud.Converted:
        """A Space Cloud export mapped to this project's import data."""
        documents = self.parse(path, file_format(path, options["format"]), stream=True)
        try:
            return space_cloud.convert(documents, file_storage=options["file_storage"])
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}") from None

    def import_(self, options: dict[str, Any]) -> None:
        """Apply the file in one transaction; report per object and in total."""
        path = options["file"]
        converted = None
        if options["from_space_cloud"]:
            converted = self.read_space_cloud(path, options)
            data = {"event_types": converted.event_types, "triggers": converted.triggers}
            for line in converted.notes:
                self.stdout.write(f"note: {line}")
            for line in converted.unmapped:
                self.stdout.write(f"not mapped: {line}")
        else:
            data = self.read(path, file_format(path, options["format"]))
        refused = bool(options["strict"] and converted and converted.unmapped)
        keep = not (options["dry_run"] or refused)
        report: dict[str, dict[str, list[str]]] = {"event types": {}, "triggers": {}}
        sections = (
            ("event types", "event_types", EventType, EVENT_TYPE_FIELDS),
            ("triggers", "triggers", Trigger, TRIGGER_FIELDS),
        )
        try:
            # Capture follows the imported triggers in the import's transaction.
            with triggers_changing(settings.DATABASE):
                for label, key, model, fields in sections:
                    for index, item in enumerate(data.get(key, [])):
                        result = apply_item(model, fields, item, f"{key}[{index}]")
                        report[label].setdefault(result, []).append(item["name"])
                if not keep:
                    raise DryRun
        except DryRun:
            pass
        prefix = "Would have " if not keep else ""
        for label, results in report.items():
            for result in ("created", "updated"):
                for name in results.get(result, []):
                    self.stdout.write(f"{prefix}{result} {label[:-1]} {name}")
            counts = ", ".join(
                f"{len(results.get(result, []))} {result}"
                for result in ("created", "updated", "unchanged")
            )
            self.stdout.write(f"{label}: {counts}")
        if converted is not None:
            self.stdout.write(f"Space Cloud: {len(converted.unmapped)} field(s) not mapped.")
        if refused:
            raise CommandError(
                f"{len(converted.unmapped)} Space Cloud field(s) could not be mapped (listed "
                "above); --strict: nothing was changed."
            )
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing was changed.")
