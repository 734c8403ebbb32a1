"""Model admins of Mission Control."""

from django.contrib import admin

from eventing.models import EventLog, InvocationLog
from triggers.models import EventType, Trigger

from .sites import site


@admin.register(Trigger, site=site)
class TriggerAdmin(admin.ModelAdmin):
    """Define webhooks and what fires them."""

    list_display = ("name", "type", "source", "url", "enabled", "paused", "updated_at")
    list_filter = ("type", "enabled", "paused")
    search_fields = ("name", "source", "url", "description")
    readonly_fields = ("created_at", "updated_at")


@admin.register(EventType, site=site)
class EventTypeAdmin(admin.ModelAdmin):
    """Custom event types: schema and queue rule."""

    list_display = ("name", "queue_rule", "updated_at")
    search_fields = ("name", "description")


class InvocationInline(admin.TabularInline):
    """Every attempt of an event, read-only."""

    model = InvocationLog
    extra = 0
    can_delete = False
    fields = ("attempt", "invoked_at", "duration_ms", "response_status_code", "error_msg")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(EventLog, site=site)
class EventLogAdmin(admin.ModelAdmin):
    """Events and their deliveries; read-only."""

    list_display = ("id", "type", "trigger_name", "status", "attempts", "created_at",
                    "deliver_at", "last_status_code")
    list_filter = ("status", "type")
    search_fields = ("=id", "=batch_id", "=idempotency_key")
    list_select_related = ("trigger",)
    inlines = (InvocationInline,)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
