"""The portal's forms: they read what an owner typed; the subscriptions' services judge it."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from eventing.subscriptions.catalog import names, public_types


class SubscriptionForm(forms.Form):
    """An endpoint: its URL, the catalog types it receives, an optional filter, a description."""

    url = forms.CharField(
        label="Endpoint URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks"}),
        help_text="Where events are POSTed (https).",
    )
    types = forms.MultipleChoiceField(
        label="Event types",
        widget=forms.CheckboxSelectMultiple,
        help_text="The events this endpoint receives.",
    )
    filter = forms.CharField(
        label="Filter",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": '{"status": "paid"}'}),
        help_text="Optional: a JSON object the event data must match. Empty: every event.",
    )
    description = forms.CharField(
        label="Description", required=False, max_length=500, help_text="What you use it for."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["types"].choices = [(name, name) for name in names(public_types())]

    def clean_filter(self) -> dict:
        text = self.cleaned_data["filter"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise ValidationError('A JSON object, e.g. {"status": "paid"}.')
        return value

    def refused(self, exc: ValidationError) -> None:
        """Show a service's refusal beside the field it names (else above the form)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)

    @classmethod
    def initial_of(cls, subscription: Any) -> dict[str, Any]:
        """The form's initial values for an existing subscription."""
        return {
            "url": subscription.trigger.url,
            "types": subscription.types,
            "filter": json.dumps(subscription.filter) if subscription.filter else "",
            "description": subscription.description,
        }


class ConfirmForm(forms.Form):
    """A deliberate second step before a sensitive action (reveal or rotate a secret)."""

    confirm = forms.BooleanField(
        label="I understand that anyone holding the secret can sign requests as this service.",
        required=True,
    )
