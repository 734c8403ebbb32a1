"""The owners' API: their subscriptions, deliveries and redelivery, and the event catalog.

An owner (EVENTING["OWNER_RESOLVER"] applied to the request) sees and changes its own
subscriptions only: every object is looked up within the owner's, so another owner's id is a
404 exactly like an id that does not exist, never a 403 that would confirm it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from eventing.api import subscription_serializers as serializers
from eventing.api.errors import Conflict
from eventing.api.views import ERRORS, EventingAPIMixin
from eventing.models import EventLog, RetiredSecret, Subscription
from eventing.owners import OwnerKey, owner_key, resolve_owner
from eventing.subscriptions import services
from eventing.subscriptions.catalog import catalog_entry, public_types


class OwnerPermission(permissions.BasePermission):
    """The request acts for an owner (EVENTING["OWNER_RESOLVER"]); model permissions play no
    part: an owner needs none and gets none."""

    message = "This account owns no subscriptions (no owner for this request)."

    def has_permission(self, request: Request, view) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return False
        return request_owner(request) is not None


def request_owner(request: Request) -> OwnerKey | None:
    """The key of the request's owner, resolved once per request; None when it has none."""
    if not hasattr(request, "_eventing_owner"):
        owner = resolve_owner(request)
        try:
            request._eventing_owner = None if owner is None else owner_key(owner)
        except TypeError:
            # The resolver answered something that is not an owner: no owner, not a 500.
            request._eventing_owner = None
    return request._eventing_owner


class OwnerCursorPagination(CursorPagination):
    """Newest first; stable under inserts."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class OwnerAPIMixin(EventingAPIMixin):
    """Owners' views: the eventing API's auth, JSON and errors, with the owner permission."""

    permission_classes = [OwnerPermission]

    @property
    def owner(self) -> OwnerKey:
        owner = request_owner(self.request)
        if owner is None:  # the permission ran first; this is a guard for subclasses
            raise exceptions.PermissionDenied(OwnerPermission.message)
        return owner


def secret_answer(subscription: Subscription) -> dict[str, Any]:
    """The current secret and until when the previous one still signs."""
    retired = (
        RetiredSecret.objects.filter(trigger_id=subscription.trigger_id)
        .order_by("-expires_at")
        .first()
    )
    return {
        "secret": subscription.trigger.signing_secret,
        "previous_valid_until": retired.expires_at if retired else None,
    }


SUBSCRIPTION_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)


@extend_schema_view(
    list=extend_schema(
        summary="Your subscriptions, newest first",
        responses={200: serializers.SubscriptionSerializer(many=True), **ERRORS},
    ),
    create=extend_schema(
        summary="Subscribe an endpoint to catalog types; the secret is shown this once",
        request=serializers.SubscriptionSerializer,
        responses={201: serializers.CreatedSubscriptionSerializer, **ERRORS},
    ),
    retrieve=extend_schema(
        parameters=[SUBSCRIPTION_ID],
        responses={200: serializers.SubscriptionSerializer, **ERRORS},
    ),
    partial_update=extend_schema(
        parameters=[SUBSCRIPTION_ID],
        request=serializers.SubscriptionSerializer,
        responses={200: serializers.SubscriptionSerializer, **ERRORS},
    ),
    destroy=extend_schema(parameters=[SUBSCRIPTION_ID], responses={204: None, **ERRORS}),
)
class SubscriptionViewSet(
    OwnerAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """An owner's webhook endpoints: create, list, change, delete, rotate, test, deliveries."""

    serializer_class = serializers.SubscriptionSerializer
    pagination_class = OwnerCursorPagination
    queryset = Subscription.objects.none()  # the schema's model; requests use get_queryset

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscription.objects.none()
        return services.subscriptions_of(self.owner)

    def get_object(self) -> Subscription:
        try:
            return services.owned_subscription(self.owner, self.kwargs["pk"])
        except Subscription.DoesNotExist:
            raise exceptions.NotFound("No such subscription.") from None

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        subscription, secret = services.create_subscription(self.owner, **body.owner_changes())
        subscription.secret = secret
        answer = serializers.CreatedSubscriptionSerializer(subscription).data
        return Response(answer, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        subscription = self.get_object()
        body = self.get_serializer(subscription, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        subscription = services.update_subscription(subscription, body.owner_changes())
        return Response(self.get_serializer(subscription).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.delete_subscription(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="A new signing secret; the previous one keeps signing for the grace period",
        parameters=[SUBSCRIPTION_ID],
        request=None,
        responses={200: serializers.SecretSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        services.rotate_subscription_secret(subscription)
        return Response(serializers.SecretSerializer(secret_answer(subscription)).data)

    @extend_schema(
        summary="Send a test event to this endpoint now and report the outcome",
        parameters=[SUBSCRIPTION_ID],
        request=serializers.TestSendSerializer,
        responses={200: serializers.TestSendResultSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        body = serializers.TestSendSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        sent = services.send_test(
            subscription, body.validated_data.get("type"), body.validated_data.get("payload")
        )
        response = sent.result.response
        return Response(
            {
                "delivered": sent.delivered,
                "status_code": response.status_code if response else None,
                "outcome": sent.event.status,
                "remark": sent.event.remark or sent.result.skipped or "",
                "event": serializers.DeliverySerializer(
                    EventLog.objects.prefetch_related("invocations").get(pk=sent.event.pk)
                ).data,
            }
        )

    @extend_schema(
        summary="Events delivered (or to be) to this endpoint, newest first, with attempts",
        parameters=[SUBSCRIPTION_ID],
        responses={200: serializers.DeliverySerializer(many=True), **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        paginator = OwnerCursorPagination()
        page = paginator.paginate_queryset(services.deliveries_of(subscription), request, view=self)
        return paginator.get_paginated_response(
            serializers.DeliverySerializer(page, many=True).data
        )

    @extend_schema(
        summary="Deliver a finished event again (fresh retry budget; attempts kept)",
        parameters=[
            SUBSCRIPTION_ID,
            OpenApiParameter("event_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
        ],
        request=None,
        responses={202: serializers.DeliverySerializer, **ERRORS},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<event_id>[^/.]+)/redeliver",
        url_name="redeliver",
    )
    def redeliver(self, request: Request, pk: str | None = None, event_id: str = "") -> Response:
        subscription = self.get_object()
        try:
            event = services.redeliver(subscription, event_id)
        except EventLog.DoesNotExist:
            raise exceptions.NotFound("No such event for this subscription.") from None
        except DjangoValidationError as exc:
            raise Conflict(" ".join(exc.messages)) from None
        return Response(serializers.DeliverySerializer(event).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(
        summary="The public event types: description, JSON Schema, example, version",
        responses={200: serializers.CatalogEntrySerializer(many=True), **ERRORS},
    )
)
class CatalogViewSet(OwnerAPIMixin, viewsets.ViewSet):
    """The event catalog: the types owners may subscribe to."""

    serializer_class = serializers.CatalogEntrySerializer

    def list(self, request: Request) -> Response:
        entries = [catalog_entry(entry) for entry in public_types()]
        return Response(serializers.CatalogEntrySerializer(entries, many=True).data)
