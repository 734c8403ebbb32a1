"""Forms of Mission Control: the trigger form that adapts to its type, queueing, redelivery."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django import forms
from django.apps import apps
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.utils import timezone

from eventing.recording import payload_rules
from eventing.recording.rules import DEAD_LETTER_PREFIX
from triggers import fields as trigger_fields
from triggers import types
from triggers.masking import MASK, mask_headers, unmask_headers
from triggers.models import EventType, Trigger
from triggers.validation import (
    INTERNAL_APPS,
    file_storage_aliases,
    json_depth,
    model_field_names,
)

CUSTOM = trigger_fields.CUSTOM
KIND_CHOICES = [
    (types.DB_INSERT, "DB_INSERT — a row is inserted"),
    (types.DB_UPDATE, "DB_UPDATE — a row is updated"),
    (types.DB_DELETE, "DB_DELETE — a row is deleted"),
    (types.FILE_CREATE, "FILE_CREATE — a file is saved"),
    (types.FILE_DELETE, "FILE_DELETE — a file is deleted"),
    (CUSTOM, "Custom event type"),
    (types.CRON, "CRON — on a schedule"),
]
# Shown instead of a saved header value; sending it back keeps the stored value.
# Errors validate_trigger reports on model fields the form shows under other names.
SOURCE_FIELD = {"db": "source_model", "file": "source_storage"}


# What a datetime-local input sends (with or without seconds), and what people type.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]


class StorableJSONField(forms.JSONField):
    """JSON that the database and the page can hold (payload_rules), else a form error."""

    def to_python(self, value: Any) -> Any:
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError("The JSON is nested too deeply.") from None
        try:
            payload_rules.check_value(converted, self.label or "JSON", 0)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        return converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Shown again as typed when it is too deep to draw (json.dumps would recurse).
        try:
            value = super().bound_data(data, initial)
        except RecursionError:
            return InvalidJSONInput(data)
        if json_depth(value) > payload_rules.MAX_DEPTH:
            return InvalidJSONInput(data)
        if value is None and data:
            # A typed `null` is shown as typed: prepare_value would blank it.
            return InvalidJSONInput(data)
        return value

    def prepare_value(self, value: Any) -> Any:
        # No value is an empty box, not the text `null` to delete before typing.
        if value is None:
            return ""
        return super().prepare_value(value)


def trackable_models() -> list:
    """Installed models that may have DB triggers (not Eventing's or Django's bookkeeping)."""
    return sorted(
        (m for m in apps.get_models() if m._meta.app_label not in INTERNAL_APPS),
        key=lambda m: m._meta.label,
    )


def model_choices() -> list[tuple[str, str]]:
    """(label, label) of every trackable model."""
    return [("", "---------")] + [(m._meta.label, m._meta.label) for m in trackable_models()]


def field_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """Fields grouped by model; values are "<model label>:<field>"."""
    return [
        (m._meta.label, [(f"{m._meta.label}:{name}", name) for name in model_field_names(m)])
        for m in trackable_models()
    ]


class TriggerForm(forms.ModelForm):
    """The trigger form: type first, then the source and fields that type needs."""

    # Read-only rows shown with a field group (group key to names), hidden with it.
    displays: dict[str, tuple[str, ...]] = {}

    kind = forms.ChoiceField(
        label="Type",
        choices=KIND_CHOICES,
        help_text="What fires the trigger: a database write, a file write or a custom event.",
    )
    custom_type = forms.CharField(
        label="Custom type",
        required=False,
        max_length=100,
        help_text="Name of the custom event type: letters, digits and underscores, not starting "
        "with DB_ or FILE_.",
    )
    source_model = forms.ChoiceField(
        label="Model",
        required=False,
        choices=model_choices,
        help_text="The model whose rows fire the trigger.",
    )
    source_storage = forms.ChoiceField(
        label="Storage",
        required=False,
        help_text="The storage alias whose files fire the trigger (settings.STORAGES entries "
        "configured as EventingStorage).",
    )
    watch_fields = forms.MultipleChoiceField(
        required=False,
        choices=field_choices,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="DB_UPDATE only: fire only if one of these fields changed. None: any update.",
    )
    payload_fields = forms.MultipleChoiceField(
        required=False,
        choices=field_choices,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="DB types: fields sent in old/new. None: all fields.",
    )
    headers = StorableJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text=f'[{{"name": "X-Key", "value": "…"}}, {{"name": "Authorization", '
        f'"value_from_env": "HOOK_TOKEN"}}]. Saved values show as {MASK}; leave the mask to '
        "keep them.",
    )

    class Meta:
        model = Trigger
        fields = trigger_fields.form_fields()
        widgets = {
            "url": forms.TextInput(attrs={"size": 80}),
            "transform_url": forms.TextInput(attrs={"size": 80}),
            "transform_query": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            "transform_headers": forms.Textarea(attrs={"rows": 3, "cols": 80}),
            "transform_body": forms.Textarea(attrs={"rows": 6, "cols": 80, "spellcheck": "false"}),
        }
        field_classes = {
            "filter": StorableJSONField,
            "cron_payload": StorableJSONField,
            "transform_query": StorableJSONField,
            "transform_headers": StorableJSONField,
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        aliases = file_storage_aliases()
        self.fields["source_storage"].choices = [("", "---------")] + [(a, a) for a in aliases]
        trigger = self.instance
        if trigger.pk:
            if trigger.type in types.BUILTIN_TYPES or trigger.type == types.CRON:
                self.initial["kind"] = trigger.type
            else:
                self.initial.update(kind=CUSTOM, custom_type=trigger.type)
            if types.is_db_type(trigger.type):
                self.initial["source_model"] = trigger.source
                self.initial["watch_fields"] = [
                    f"{trigger.source}:{f}" for f in trigger.watch_fields or []
                ]
                self.initial["payload_fields"] = [
                    f"{trigger.source}:{f}" for f in trigger.payload_fields or []
                ]
            elif types.is_file_type(trigger.type):
                self.initial["source_storage"] = trigger.source
            self.initial["headers"] = mask_headers(trigger.headers)
        else:
            self.initial.setdefault("headers", [])
        if "transform_method" in self.fields:  # read-only views leave it out
            self.fields["transform_method"].required = False
        if "kind" in self.fields:
            # Which rows the page shows for which kind (trigger_form.js), from the declaration.
            visibility = trigger_fields.form_visibility(self.displays)
            self.fields["kind"].widget.attrs["data-field-kinds"] = json.dumps(visibility)

    def clean_custom_type(self) -> str:
        return (self.cleaned_data.get("custom_type") or "").strip()

    def clean_filter(self) -> Any:
        value = self.cleaned_data.get("filter")
        return {} if value is None else value

    def clean_transform_method(self) -> str:
        # Optional on the form (posted forms of before transforms leave it out): POST.
        return self.cleaned_data.get("transform_method") or "POST"

    def clean_transform_query(self) -> Any:
        value = self.cleaned_data.get("transform_query")
        return {} if value is None else value

    def clean_transform_headers(self) -> Any:
        value = self.cleaned_data.get("transform_headers")
        return {} if value is None else value

    def clean_cron_payload(self) -> Any:
        value = self.cleaned_data.get("cron_payload")
        return {} if value is None else value

    def clean_headers(self) -> Any:
        value = self.cleaned_data.get("headers")
        return unmask_headers([] if value is None else value, self.instance.headers)

    def _fields_of_model(self, name: str, model_label: str) -> list[str]:
        chosen = self.cleaned_data.get(name) or []
        wrong = [v for v in chosen if v.rpartition(":")[0] != model_label]
        if wrong:
            self.add_error(name, f"Choose fields of {model_label or 'the chosen model'} only.")
        return [v.rpartition(":")[2] for v in chosen]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = data.get("kind")
        trigger = self.instance
        if kind == CUSTOM:
            name = data.get("custom_type", "")
            if not name:
                self.add_error("custom_type", "Give the custom event type's name.")
            elif not types.is_custom_type(name):
                self.add_error(
                    "custom_type",
                    "Use letters, digits and underscores, not starting with DB_ or FILE_.",
                )
            trigger.type, trigger.source = name, ""
        elif kind in types.DB_TYPES:
            label = data.get("source_model", "")
            if not label:
                self.add_error("source_model", "Choose the model whose rows fire the trigger.")
            trigger.type, trigger.source = kind, label
        elif kind in types.FILE_TYPES:
            alias = data.get("source_storage", "")
            if not alias:
                self.add_error("source_storage", "Choose the storage alias.")
            trigger.type, trigger.source = kind, alias
        elif kind == types.CRON:
            trigger.type, trigger.source = kind, ""
        source = trigger.source if kind in types.DB_TYPES else ""
        data["watch_fields"] = self._fields_of_model("watch_fields", source)
        data["payload_fields"] = self._fields_of_model("payload_fields", source)
        return data

    def _update_errors(self, errors: ValidationError) -> None:
        """Show validate_trigger's errors on `type` and `source` under the fields shown."""
        if hasattr(errors, "error_dict"):
            kind = self.cleaned_data.get("kind")
            where = {
                "type": "custom_type" if kind == CUSTOM else "kind",
                "source": SOURCE_FIELD["db"]
                if kind in types.DB_TYPES
                else SOURCE_FIELD["file"]
                if kind in types.FILE_TYPES
                else "kind",
                "signing_secret": None,
            }
            remapped: dict[str, list] = {}
            for key, messages in errors.error_dict.items():
                target = where.get(key, key)
                if target is not None and target not in self.fields:
                    target = None
                remapped.setdefault(target or "__all__", []).extend(messages)
            errors = ValidationError(remapped)
        super()._update_errors(errors)


class EventTypeForm(forms.ModelForm):
    """An event type; the JSON Schema is checked as a schema by the model's validation."""

    schema = StorableJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80}),
        help_text='JSON Schema of the payload, e.g. {"type": "object", "required": ["id"]}. '
        "Empty: any JSON.",
    )

    class Meta:
        model = EventType
        fields = ("name", "description", "schema", "queue_rule")


def custom_type_choices() -> list[tuple[str, str]]:
    """Custom types an operator may queue: declared event types and custom trigger types, but
    not dead-letter types, which only Eventing emits (the API refuses them too)."""
    declared = set(EventType.objects.exclude(name="default").values_list("name", flat=True))
    used = {
        t
        for t in Trigger.objects.values_list("type", flat=True).distinct()
        if types.is_custom_type(t)
    }
    return [
        (name, name)
        for name in sorted(declared | used)
        if not name.lower().startswith(DEAD_LETTER_PREFIX)
    ]


class QueueEventForm(forms.Form):
    """Queue a custom event: type, JSON payload, when, and whether to wait for the reply."""

    type = forms.ChoiceField(choices=custom_type_choices, help_text="The custom event type.")
    # Not "required": Django counts {} and [] as empty, but they are valid payloads.
    payload = StorableJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80}),
        help_text="The event's data as JSON; checked against the type's JSON Schema.",
    )
    delay_s = forms.FloatField(
        label="Delay (s)",
        required=False,
        min_value=0,
        help_text="Deliver this many seconds from now.",
    )
    deliver_at = forms.DateTimeField(
        label="Deliver at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=DATETIME_FORMATS,
        help_text="Or deliver at this time (server time zone).",
    )
    synchronous = forms.BooleanField(
        required=False,
        help_text="Deliver now, in this request, and show the webhook's reply.",
    )

    def clean_payload(self) -> Any:
        if not (self.data.get("payload") or "").strip():
            raise ValidationError("Enter a JSON payload.")
        payload = self.cleaned_data.get("payload")
        try:
            payload_rules.check_payload(payload)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        return payload

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("delay_s") is not None and data.get("deliver_at") is not None:
            self.add_error("deliver_at", "Give a delay or a time, not both.")
        event_type = data.get("type")
        if event_type and "payload" in data:
            schema = (
                EventType.objects.filter(name=event_type).values_list("schema", flat=True).first()
            )
            try:
                payload_rules.check_against_schema(event_type, schema, data["payload"])
            except ValidationError as exc:
                for path, messages in exc.message_dict.items():
                    self.add_error("payload", [f"{path}: {message}" for message in messages])
        return data


class RedeliverFailedForm(forms.Form):
    """Pick a trigger and a start time: every failed event of it since then is redelivered."""

    trigger = forms.ModelChoiceField(
        queryset=Trigger.objects.all(), help_text="Whose failed events to redeliver."
    )
    since = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=DATETIME_FORMATS,
        help_text="Failed events created at or after this time (server time zone).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "since" not in self.initial:
            yesterday = timezone.localtime() - dt.timedelta(days=1)
            self.initial["since"] = yesterday.strftime("%Y-%m-%dT%H:%M")


class ReplayForm(forms.Form):
    """A window of finished events to deliver again: a trigger or a type, a time range and
    statuses. The page counts them first; `confirm` then replays the same window."""

    trigger = forms.ModelChoiceField(
        queryset=Trigger.objects.all(), required=False, help_text="Whose events to redeliver."
    )
    type = forms.RegexField(
        types.NAME_RE,
        required=False,
        max_length=100,
        help_text="Or: every trigger's events of this type.",
    )
    since = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=DATETIME_FORMATS,
        help_text="Events created at or after this time (server time zone).",
    )
    until = forms.DateTimeField(
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=DATETIME_FORMATS,
        help_text="Events created before this time.",
    )
    statuses = forms.MultipleChoiceField(
        choices=[("failed", "failed"), ("processed", "processed"), ("cancelled", "cancelled")],
        initial=["failed"],
        widget=forms.CheckboxSelectMultiple,
        help_text="Which finished events to redeliver.",
    )
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        now = timezone.localtime()
        self.initial.setdefault("since", (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
        self.initial.setdefault("until", now.strftime("%Y-%m-%dT%H:%M"))

    def clean(self) -> dict[str, Any]:
        """A trigger or a type, and a window that ends after it starts."""
        data = super().clean()
        if not data.get("trigger") and not data.get("type"):
            raise ValidationError("Choose a trigger or give a type.")
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "The window must end after it starts.")
        return data
