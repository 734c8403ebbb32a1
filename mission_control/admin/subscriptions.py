"""Owners' subscriptions and the event catalog in Mission Control: every subscription with its
owner, filtered by owner; the catalog's public types edited by operators."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from eventing.models import PublicEventType, Subscription
from eventing.owners import owners_by_key
from eventing.subscriptions.catalog import validate_public_type

from ..sites import site
from .params import CheckedFilter, CheckedParamsMixin
from .readonly import ReadOnlyAdminMixin

# Owners offered in the owner filter's list; past it, filter with ?owner=<label>:<pk>.
OWNER_CHOICES = 100


class OwnerFilter(CheckedFilter):
    """Subscriptions of one owner: `<model label>:<pk>`."""

    title = "owner"
    parameter_name = "owner"
    value_pattern = re.compile(r"^[\w]+\.[\w]+:[^\s]{1,100}\Z")
    expected = "an owner as app_label.Model:pk"

    def lookups(self, request, model_admin):
        keys = list(
            Subscription.objects.order_by("owner_model", "owner_id")
            .values_list("owner_model", "owner_id")
            .distinct()[:OWNER_CHOICES]
        )
        found = owners_by_key(set(keys))
        return [
            (f"{label}:{pk}", str(found.get((label, pk), f"{label} {pk}"))) for label, pk in keys
        ]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        label, pk = self.value().split(":", 1)
        return queryset.filter(owner_model=label, owner_id=pk)


class OwnersChangeList(ChangeList):
    """Loads the page's owners in one query per owner model, not one per row."""

    def get_results(self, request):
        super().get_results(request)
        found = owners_by_key({(s.owner_model, s.owner_id) for s in self.result_list})
        for subscription in self.result_list:
            subscription.owner_object = found.get((subscription.owner_model, subscription.owner_id))


@admin.register(Subscription, site=site)
class SubscriptionAdmin(ReadOnlyAdminMixin, CheckedParamsMixin, admin.ModelAdmin):
    """Every owner's subscriptions; owners change them through their API or portal."""

    list_display = ("id", "owner", "url", "event_types", "enabled", "paused", "created_at")
    list_filter = (OwnerFilter, "enabled")
    search_fields = ("owner_id", "trigger__url", "description")
    list_select_related = ("trigger",)
    fields = (
        "id",
        "owner",
        "url",
        "types",
        "filter",
        "description",
        "enabled",
        "delivery_trigger",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def get_changelist(self, request, **kwargs):
        return OwnersChangeList

    @admin.display(description="owner", ordering="owner_id")
    def owner(self, obj: Subscription) -> str:
        owner = getattr(obj, "owner_object", None)
        if owner is None and not hasattr(obj, "owner_object"):
            owner = owners_by_key({(obj.owner_model, obj.owner_id)}).get(
                (obj.owner_model, obj.owner_id)
            )
        return (
            f"{owner} ({obj.owner_model} {obj.owner_id})"
            if owner
            else f"{obj.owner_model} {obj.owner_id} (gone)"
        )

    @admin.display(description="URL", ordering="trigger__url")
    def url(self, obj: Subscription) -> str:
        return obj.trigger.url

    @admin.display(description="types")
    def event_types(self, obj: Subscription) -> str:
        return ", ".join(obj.types or [])

    @admin.display(description="paused", boolean=True)
    def paused(self, obj: Subscription) -> bool:
        return obj.trigger.paused

    @admin.display(description="deliveries")
    def delivery_trigger(self, obj: Subscription) -> str:
        events = reverse(f"{site.name}:eventing_eventlog_changelist")
        return format_html(
            '<a href="{}?trigger={}">events of {}</a>', events, obj.trigger_id, obj.trigger.name
        )


class PublicEventTypeForm(forms.ModelForm):
    """The catalog entry, checked by the catalog's own rule (a DB rule names its payload)."""

    class Meta:
        model = PublicEventType
        fields = (
            "name",
            "description",
            "schema",
            "example",
            "version",
            "public",
            "db_type",
            "db_source",
            "owner_path",
            "payload_fields",
        )

    def clean(self):
        data = super().clean()
        rule = ("schema", "db_type", "db_source", "owner_path", "payload_fields")
        entry = PublicEventType(**{name: data.get(name) for name in rule if name in data})
        try:
            validate_public_type(entry)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return data


@admin.register(PublicEventType, site=site)
class PublicEventTypeAdmin(admin.ModelAdmin):
    """The event catalog owners see at /api/eventing/catalog/."""

    form = PublicEventTypeForm
    list_display = ("name", "version", "public", "db_type", "db_source", "updated_at")
    list_filter = ("public",)
    search_fields = ("name", "description")
