"""The portal's pages. Each acts for `request.portal_owner` only, through the same
subscription services as the API: another owner's subscription or delivery is a 404."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from eventing.models import EventLog, RetiredSecret, Subscription
from eventing.portal.access import portal_view, refused
from eventing.portal.forms import ConfirmForm, SubscriptionForm
from eventing.portal.headers import protect
from eventing.portal.links import LinkRefused, read_link
from eventing.portal.sessions import end_session, start_session
from eventing.subscriptions import services
from eventing.subscriptions.catalog import catalog_entry, public_types

# What a page says after an action redirected to it (`?notice=<key>`): fixed texts only, so a
# crafted link cannot put words on the page.
NOTICES = {
    "created": "Endpoint created.",
    "saved": "Endpoint saved.",
    "enabled": "Endpoint enabled: new events are delivered to it.",
    "disabled": "Endpoint disabled: no events are recorded for it until it is enabled.",
    "deleted": "Endpoint deleted; its waiting deliveries were cancelled.",
    "test-delivered": "Test event delivered.",
    "test-failed": "Test event sent; your endpoint did not accept it (see the attempt below).",
    "redelivered": "Delivery queued again: it is sent in a moment.",
}
DELIVERIES_PER_PAGE = 50


def page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render a portal page with the owner, and the notice an action left."""
    owner = request.portal_owner
    context = {
        "portal_owner_name": owner.name,
        "portal_by_link": owner.by_link,
        "notice": NOTICES.get(request.GET.get("notice", "")),
        **context,
    }
    return render(request, f"eventing/portal/{template}", context, status=status)


def posted(request: HttpRequest) -> Any:
    """The POSTed data for a form (even when empty: an unchecked confirmation), else None."""
    return request.POST if request.method == "POST" else None


def back(name: str, notice: str = "", **kwargs: Any) -> HttpResponse:
    """Redirect to a portal page after an action, with its notice."""
    url = reverse(f"eventing_portal:{name}", kwargs=kwargs)
    return redirect(f"{url}?notice={notice}" if notice else url)


def owned(request: HttpRequest, pk: Any) -> Subscription:
    """The owner's subscription `pk`; a 404 for any other, another owner's included."""
    try:
        return services.owned_subscription(request.portal_owner.key, pk)
    except Subscription.DoesNotExist:
        raise Http404("No such endpoint.") from None


def owned_event(subscription: Subscription, event_id: Any) -> EventLog:
    """One delivery of the subscription; a 404 for any other."""
    try:
        return services.owned_delivery(subscription, event_id)
    except EventLog.DoesNotExist:
        raise Http404("No such delivery.") from None


# Entering and leaving


@require_GET
def enter(request: HttpRequest, token: str) -> HttpResponse:
    """Exchange a link from eventing.portal_url() for a portal session, then leave the link's
    URL at once (it is not kept in the history or sent on as a referrer)."""
    try:
        label, pk = read_link(token)
    except LinkRefused as exc:
        return refused(request, exc.reason, 400)
    response = redirect("eventing_portal:subscriptions")
    start_session(request, response, label, pk)
    return protect(response)


@require_POST
@portal_view
def sign_out(request: HttpRequest) -> HttpResponse:
    """End this browser's portal session (the host's own login is not touched)."""
    response = refused(request, "You left the webhooks portal.", 200)
    end_session(request, response)
    return response


# The catalog and the endpoints


@require_GET
@portal_view
def home(request: HttpRequest) -> HttpResponse:
    """The portal's root: its endpoints."""
    return redirect("eventing_portal:subscriptions")


@require_GET
@portal_view
def catalog(request: HttpRequest) -> HttpResponse:
    """The event types owners may subscribe to, with schema and example."""
    entries = [catalog_entry(entry) for entry in public_types()]
    for entry in entries:
        entry["example_json"] = pretty(entry["example"])
        entry["schema_json"] = pretty(entry["schema"])
    return page(request, "catalog.html", {"entries": entries})


def pretty(value: Any) -> str:
    """JSON as the pages show it: indented, keys in their order."""
    return json.dumps(value, indent=2, ensure_ascii=False)


@require_GET
@portal_view
def subscriptions(request: HttpRequest) -> HttpResponse:
    """The owner's endpoints."""
    found = services.subscriptions_of(request.portal_owner.key)
    return page(request, "subscriptions.html", {"subscriptions": found})


@require_http_methods(["GET", "POST"])
@portal_view
def create(request: HttpRequest) -> HttpResponse:
    """A new endpoint; its signing secret is shown once, on the page that follows."""
    form = SubscriptionForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            subscription, secret = services.create_subscription(
                request.portal_owner.key, **form.cleaned_data
            )
        except ValidationError as exc:
            form.refused(exc)
        else:
            return page(
                request,
                "secret.html",
                {"subscription": subscription, "secret": secret, "created": True},
                status=201,
            )
    return page(request, "form.html", {"form": form, "subscription": None})


@require_GET
@portal_view
def detail(request: HttpRequest, pk: Any) -> HttpResponse:
    """One endpoint: its settings, its actions, its latest deliveries."""
    return page(request, "detail.html", detail_context(owned(request, pk)))


def detail_context(subscription: Subscription, **more: Any) -> dict[str, Any]:
    """What the endpoint's page shows."""
    return {
        "subscription": subscription,
        "deliveries": services.deliveries_of(subscription)[:10],
        "signing_until": retired_secrets(subscription),
        **more,
    }


@require_http_methods(["GET", "POST"])
@portal_view
def edit(request: HttpRequest, pk: Any) -> HttpResponse:
    """Change the endpoint's URL, types, filter or description."""
    subscription = owned(request, pk)
    form = SubscriptionForm(posted(request), initial=SubscriptionForm.initial_of(subscription))
    if request.method == "POST" and form.is_valid():
        try:
            services.update_subscription(subscription, form.cleaned_data)
        except ValidationError as exc:
            form.refused(exc)
        else:
            return back("detail", "saved", pk=subscription.pk)
    return page(request, "form.html", {"form": form, "subscription": subscription})


@require_POST
@portal_view
def set_enabled(request: HttpRequest, pk: Any) -> HttpResponse:
    """Enable (`enabled=1`) or disable the endpoint."""
    subscription = owned(request, pk)
    enabled = request.POST.get("enabled") == "1"
    services.update_subscription(subscription, {"enabled": enabled})
    return back("detail", "enabled" if enabled else "disabled", pk=subscription.pk)


@require_http_methods(["GET", "POST"])
@portal_view
def delete(request: HttpRequest, pk: Any) -> HttpResponse:
    """Delete the endpoint, after a confirmation page."""
    subscription = owned(request, pk)
    if request.method == "POST":
        services.delete_subscription(subscription)
        return back("subscriptions", "deleted")
    return page(request, "delete.html", {"subscription": subscription})


@require_POST
@portal_view
def test_send(request: HttpRequest, pk: Any) -> HttpResponse:
    """Send a test event of one of the endpoint's types now, and show its delivery."""
    subscription = owned(request, pk)
    try:
        sent = services.send_test(subscription, request.POST.get("type") or None)
    except ValidationError as exc:
        context = detail_context(subscription, errors=exc.messages)
        return page(request, "detail.html", context, status=400)
    notice = "test-delivered" if sent.delivered else "test-failed"
    return back("delivery", notice, pk=subscription.pk, event_id=sent.event.pk)


# The signing secret


def retired_secrets(subscription: Subscription) -> list[RetiredSecret]:
    """The previous secrets that still sign beside the current one, with their end."""
    return list(
        RetiredSecret.objects.filter(
            trigger_id=subscription.trigger_id, expires_at__gt=timezone.now()
        ).order_by("-created_at")
    )


@require_http_methods(["GET", "POST"])
@portal_view
def reveal_secret(request: HttpRequest, pk: Any) -> HttpResponse:
    """Show the signing secret after a confirmation (POST), never on a plain GET."""
    subscription = owned(request, pk)
    form = ConfirmForm(posted(request))
    if request.method == "POST" and form.is_valid():
        secret = subscription.trigger.signing_secret
        return page(request, "secret.html", {"subscription": subscription, "secret": secret})
    return page(request, "confirm.html", {"subscription": subscription, "form": form})


@require_http_methods(["GET", "POST"])
@portal_view
def rotate_secret(request: HttpRequest, pk: Any) -> HttpResponse:
    """A new signing secret, after a confirmation; the old one signs beside it for the grace
    period, and the page says until when."""
    subscription = owned(request, pk)
    form = ConfirmForm(posted(request))
    if request.method == "POST" and form.is_valid():
        secret = services.rotate_subscription_secret(subscription)
        return page(
            request,
            "secret.html",
            {
                "subscription": subscription,
                "secret": secret,
                "rotated": True,
                "signing_until": retired_secrets(subscription),
            },
        )
    return page(
        request, "confirm.html", {"subscription": subscription, "form": form, "rotate": True}
    )


# Deliveries


@require_GET
@portal_view
def deliveries(request: HttpRequest, pk: Any) -> HttpResponse:
    """The endpoint's deliveries, newest first, a page at a time."""
    subscription = owned(request, pk)
    paginator = Paginator(services.deliveries_of(subscription), DELIVERIES_PER_PAGE)
    found = paginator.get_page(request.GET.get("page"))
    return page(request, "deliveries.html", {"subscription": subscription, "page": found})


@require_GET
@portal_view
def delivery(request: HttpRequest, pk: Any, event_id: Any) -> HttpResponse:
    """One delivery: its status, the body sent, and every attempt with the endpoint's answer."""
    subscription = owned(request, pk)
    return page(request, "delivery.html", delivery_context(subscription, event_id))


def delivery_context(subscription: Subscription, event_id: Any, **more: Any) -> dict[str, Any]:
    """What a delivery's page shows (a 404 for another subscription's event)."""
    event = owned_event(subscription, event_id)
    return {
        "subscription": subscription,
        "event": event,
        "body": pretty(event.payload),
        "attempts": sorted(event.invocations.all(), key=lambda row: row.attempt),
        **more,
    }


@require_POST
@portal_view
def redeliver(request: HttpRequest, pk: Any, event_id: Any) -> HttpResponse:
    """Send a finished delivery again (a fresh set of attempts; earlier ones are kept)."""
    subscription = owned(request, pk)
    try:
        services.redeliver(subscription, event_id)
    except EventLog.DoesNotExist:
        raise Http404("No such delivery.") from None
    except ValidationError as exc:
        context = delivery_context(subscription, event_id, errors=exc.messages)
        return page(request, "delivery.html", context, status=400)
    return back("delivery", "redelivered", pk=subscription.pk, event_id=event_id)
