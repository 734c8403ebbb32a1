"""API views: the Space Cloud queue endpoint, events, triggers and event types."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, permissions, status, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from eventing.api import queueing, serializers
from eventing.api.auth import EventingJWTAuthentication, QueueAuthenticationMixin
from eventing.api.errors import BadGateway, Conflict, exception_handler
from eventing.api.parsers import BoundedJSONParser, check_body_headers
from eventing.api.permissions import ModelPermissions, QueueEveryTypePermission
from eventing.api.throttles import EventingThrottle, QueueThrottle
from eventing.capture.database import triggers_changing
from eventing.conf import settings
from eventing.delivery import synchronous
from eventing.dispatch.operations import (
    Replay,
    cancel_events,
    redeliver_events,
    replay,
    reschedule_event,
)
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.ops import search
from eventing.ops.search import (
    filter_by_payload,
    filter_invocations,
    parse_payload_filters,
    query_pairs,
)
from eventing.recording.emit import BatchItem, record_test_event
from triggers import types
from triggers.models import EventType, Trigger

ERRORS = {
    code: OpenApiResponse(description=text)
    for code, text in {
        400: "Invalid input; `detail` names the field.",
        401: "Missing or invalid credentials.",
        403: "Not allowed (queue rule or permission).",
        404: "No such object.",
        409: "Conflicts with the object's state or an idempotency key.",
        411: "Chunked body on a server that cannot end it; send Content-Length.",
        413: "Body over EVENTING['MAX_PAYLOAD_BYTES'].",
        415: "Body is not JSON.",
        429: "Throttled; see Retry-After.",
    }.items()
}


class EventingAPIMixin:
    """What every eventing view shares: auth, JSON in and out, body limits, JSON errors."""

    authentication_classes = [
        EventingJWTAuthentication,
        TokenAuthentication,
        SessionAuthentication,
    ]
    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]
    permission_classes = [ModelPermissions]
    throttle_classes = [EventingThrottle]

    def get_exception_handler(self):
        """Our handler, whatever the host project's REST_FRAMEWORK setting says."""
        return exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """Refuse an oversized or untyped body before authenticating or reading it."""
        check_body_headers(request)
        super().initial(request, *args, **kwargs)


def idempotency_header(request: Request) -> str | None:
    """The `Idempotency-Key` header, if any (at most 200 characters)."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > 200:
        raise exceptions.ValidationError({"Idempotency-Key": ["At most 200 characters."]})
    return key or None


def queued_results(items: list[BatchItem]) -> list[dict[str, Any]]:
    """The answer for each queued event, serialized in one pass (fields are built once)."""
    rows = serializers.EventSerializer([row for item in items for row in item.rows], many=True).data
    results, start = [], 0
    for item in items:
        end = start + len(item.rows)
        results.append({"created": item.created, "events": rows[start:end]})
        start = end
    return results


def check_project(project: str) -> None:
    """404 unless `project` is the one the Space Cloud endpoints serve."""
    expected = settings.QUEUE_PATH_PROJECT
    if project != expected:
        raise exceptions.NotFound(
            f"Unknown project {project!r}; this endpoint serves {expected!r} "
            "(EVENTING['QUEUE_PATH_PROJECT'])."
        )


SPACE_CLOUD_EXAMPLE = OpenApiExample(
    "Space Cloud client",
    value={
        "type": "order_placed",
        "payload": {"order_id": 42},
        "delay": 0,
        "timestamp": "",
        "options": {},
        "isSynchronous": False,
    },
    request_only=True,
)


class SpaceCloudQueueView(QueueAuthenticationMixin, EventingAPIMixin, APIView):
    """`POST /v1/api/<project>/eventing/queue`: Space Cloud's queue endpoint."""

    permission_classes = [permissions.AllowAny]  # each type's queue rule decides
    throttle_classes = [QueueThrottle]

    @extend_schema(
        operation_id="space_cloud_queue_event",
        summary="Queue a custom event (Space Cloud compatible)",
        request=serializers.SpaceCloudQueueSerializer,
        examples=[SPACE_CLOUD_EXAMPLE],
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        responses={
            200: serializers.SpaceCloudQueuedSerializer,
            502: OpenApiResponse(description="Synchronous: no webhook accepted the event."),
            **ERRORS,
        },
    )
    def post(self, request: Request, project: str) -> Response:
        """Queue one event; with isSynchronous, deliver it now and answer the webhook's reply."""
        check_project(project)
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
        body = serializers.SpaceCloudQueueSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = {**body.validated_data, "idempotency_key": idempotency_header(request)}
        requests = queueing.authorize(request.user, [data], batch=False)
        synchronous = data["isSynchronous"]
        item = queueing.record(requests, publish_rows=not synchronous)[0]
        answer = {
            "event_ids": [str(row.id) for row in item.rows],
            "batch_id": str(item.rows[0].batch_id) if item.rows else None,
        }
        if not synchronous:
            return Response(answer)  # 200 as Space Cloud answers, not 202: its clients check it
        return self.synchronous_answer(item, answer)

    def synchronous_answer(self, item: BatchItem, answer: dict[str, Any]) -> Response:
        """Deliver now; the first accepting trigger's reply is the result (502 if none)."""
        if not item.created:
            # An idempotent repeat: answer what the first request's delivery got back.
            reply = queueing.earlier_reply(item.rows)
            return Response({**answer, "result": queueing.space_cloud_result(reply)})
        results = synchronous.deliver_now(item.rows)
        failures = []
        for row, result in zip(item.rows, results, strict=True):
            if synchronous.delivered(result):
                reply = queueing.reply_of(result)
                return Response({**answer, "result": queueing.space_cloud_result(reply)})
            failures.append(f"{row.trigger_name}: {synchronous.why_not_delivered(result)}")
        if not item.rows:
            # Nothing matched: there is no reply to give.
            return Response({**answer, "result": None})
        raise BadGateway("No webhook accepted the event: " + "; ".join(failures))


class SpaceCloudAdminQueueView(EventingAPIMixin, APIView):
    """`POST /v1/api/<project>/eventing/admin-queue`: Space Cloud's batch queue for admins."""

    permission_classes = [QueueEveryTypePermission]
    throttle_classes = [QueueThrottle]

    @extend_schema(
        operation_id="space_cloud_admin_queue_events",
        summary="Queue a batch of custom events (Space Cloud compatible, needs queue_event)",
        request=serializers.SpaceCloudAdminQueueSerializer,
        responses={200: serializers.SpaceCloudBatchQueuedSerializer, **ERRORS},
    )
    def post(self, request: Request, project: str) -> Response:
        """Queue every event of `events` in one transaction, asynchronously; 200 with the ids."""
        check_project(project)
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
        body = serializers.SpaceCloudAdminQueueSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        events = body.validated_data["events"]
        limit = int(settings.MAX_BATCH_SIZE)
        if len(events) > limit:
            raise exceptions.ValidationError(
                {"events": [f"{len(events)} events; at most {limit} (EVENTING['MAX_BATCH_SIZE'])."]}
            )
        each = serializers.SpaceCloudQueueSerializer(data=events, many=True)
        if not each.is_valid():
            raise exceptions.ValidationError({"events": each.errors})
        items = queueing.record(queueing.authorize(request.user, each.validated_data, batch=True))
        return Response({"event_ids": [str(row.id) for item in items for row in item.rows]})


class EventCursorPagination(CursorPagination):
    """Newest first; stable under inserts."""

    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


EVENT_CREATE_REQUEST = PolymorphicProxySerializer(
    component_name="EventCreateOneOrMany",
    serializers=[
        serializers.EventCreateSerializer,
        serializers.EventCreateSerializer(many=True),
    ],
    resource_type_field_name=None,
    many=False,
)
EVENT_CREATE_RESPONSE = PolymorphicProxySerializer(
    component_name="QueuedOneOrMany",
    serializers=[serializers.QueuedSerializer, serializers.QueuedBatchSerializer],
    resource_type_field_name=None,
)


@extend_schema_view(
    list=extend_schema(
        summary="List events, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=list(EventStatus.values)),
            OpenApiParameter("type", str),
            OpenApiParameter("trigger", str, description="Trigger name."),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
            OpenApiParameter(
                "payload__<key>[__<key>…]",
                str,
                description="Payload value at a key path, e.g. payload__customer_id=42 or "
                "payload__new__status=paid (a number, true, false or null also matches as "
                f"JSON). At most {search.MAX_FILTERS} filters, {search.MAX_DEPTH} keys deep, "
                f"{search.MAX_VALUE_LENGTH} characters.",
            ),
        ],
        responses={200: serializers.EventSerializer(many=True), **ERRORS},
    ),
    retrieve=extend_schema(
        summary="An event with its invocations",
        responses={200: serializers.EventDetailSerializer, **ERRORS},
    ),
    create=extend_schema(
        summary="Queue one custom event or a batch (a list, up to MAX_BATCH_SIZE)",
        request=EVENT_CREATE_REQUEST,
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        responses={201: EVENT_CREATE_RESPONSE, 200: EVENT_CREATE_RESPONSE, **ERRORS},
    ),
    partial_update=extend_schema(
        summary="Reschedule a staged event",
        request=serializers.RescheduleSerializer,
        responses={200: serializers.EventSerializer, **ERRORS},
    ),
)
class EventViewSet(
    QueueAuthenticationMixin,
    EventingAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Events: queue, list, inspect, reschedule, cancel, redeliver."""

    queryset = EventLog.objects.all()
    serializer_class = serializers.EventSerializer
    pagination_class = EventCursorPagination
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_permissions = {
        "cancel": ["eventing.cancel_eventlog"],
        "redeliver": ["eventing.redeliver_eventlog"],
        "replay": ["eventing.redeliver_eventlog"],
    }

    def queues_events(self) -> bool:
        """Only `create` queues: the other actions refuse bad credentials at once."""
        return self.action == "create"

    def get_permissions(self):
        """Queueing is governed by each type's queue rule; the rest by model permissions."""
        if self.action == "create":
            return [permissions.AllowAny()]
        return super().get_permissions()

    def get_throttles(self):
        """Queueing has its own rate."""
        if self.action == "create":
            return [QueueThrottle()]
        return super().get_throttles()

    def get_serializer_class(self):
        """One event comes with its invocations; lists do not."""
        if self.action == "retrieve":
            return serializers.EventDetailSerializer
        return serializers.EventSerializer

    def get_queryset(self):
        """Filtered by the query parameters; invocations prefetched for one event."""
        queryset = EventLog.objects.all()
        if self.action == "retrieve":
            return queryset.prefetch_related(
                Prefetch("invocations", InvocationLog.objects.order_by("attempt", "invoked_at"))
            )
        if self.action != "list":
            return queryset
        params = serializers.EventFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        lookups = {
            "status": "status",
            "type": "type",
            "trigger": "trigger_name",
            "created_after": "created_at__gte",
            "created_before": "created_at__lt",
        }
        queryset = queryset.filter(**{lookups[name]: value for name, value in filters.items()})
        return filter_by_payload(
            queryset, parse_payload_filters(query_pairs(self.request.query_params))
        )

    def get_object(self) -> EventLog:
        """404 (not 400) for an id that is not a UUID."""
        try:
            return super().get_object()
        except DjangoValidationError:
            raise exceptions.NotFound("No event with this id.") from None

    def create(self, request: Request) -> Response:
        """Queue one event (an object) or a batch (a list) in one transaction."""
        batch = isinstance(request.data, list)
        events = request.data if batch else [request.data]
        limit = int(settings.MAX_BATCH_SIZE)
        if batch and not events:
            raise exceptions.ValidationError({"non_field_errors": ["The batch is empty."]})
        if len(events) > limit:
            raise exceptions.ValidationError(
                {
                    "non_field_errors": [
                        f"{len(events)} events; at most {limit} per request "
                        "(EVENTING['MAX_BATCH_SIZE'])."
                    ]
                }
            )
        if not all(isinstance(event, dict) for event in events):
            raise exceptions.ValidationError(
                {"non_field_errors": ["Send an event object or a list of event objects."]}
            )
        body = serializers.EventCreateSerializer(data=events, many=True)
        if not body.is_valid():
            errors = body.errors if batch else body.errors[0]
            raise exceptions.ValidationError(errors)
        data = body.validated_data
        if not batch and not data[0].get("idempotency_key"):
            data[0]["idempotency_key"] = idempotency_header(request)
        items = queueing.record(queueing.authorize(request.user, data, batch=batch))
        created = any(item.created for item in items)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        results = queued_results(items)
        if not batch:
            return Response(results[0], status=code)
        count = sum(len(item.rows) for item in items)
        return Response({"count": count, "results": results}, status=code)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Move a staged event's delivery time."""
        event = self.get_object()
        body = serializers.RescheduleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if event.status != EventStatus.STAGED:
            raise Conflict(
                f"deliver_at: only staged events can be rescheduled; this one is {event.status}."
            )
        try:
            event = reschedule_event(event.id, body.validated_data["deliver_at"])
        except DjangoValidationError:
            raise Conflict("deliver_at: the event is no longer staged.") from None
        return Response(serializers.EventSerializer(event).data)

    @extend_schema(
        summary="Cancel a staged event",
        request=None,
        responses={200: serializers.EventSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel the event if it is still staged (or an intent)."""
        event = self.get_object()
        if not cancel_events([event.id], reason=f"Cancelled through the API by {request.user}"):
            raise Conflict(f"Only staged events can be cancelled; this one is {event.status}.")
        event.refresh_from_db()
        return Response(serializers.EventSerializer(event).data)

    @extend_schema(
        summary="Redeliver a finished event (fresh retry budget)",
        request=None,
        responses={200: serializers.EventSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        """Stage a processed, failed or cancelled event again."""
        event = self.get_object()
        if not redeliver_events([event.id]):
            raise Conflict(
                f"Only processed, failed or cancelled events can be redelivered; this one is "
                f"{event.status}."
            )
        event.refresh_from_db()
        return Response(serializers.EventSerializer(event).data)

    @extend_schema(
        summary="Redeliver a trigger's or a type's finished events created in a time window",
        description="Count first with `dry_run: true`; the same window then stages exactly "
        "those events again, a batch per transaction (fresh retry budget, earlier invocations "
        "kept, as `…/<id>/redeliver/`).",
        request=serializers.ReplaySerializer,
        responses={200: serializers.ReplayResultSerializer, **ERRORS},
    )
    @action(detail=False, methods=["post"])
    def replay(self, request: Request) -> Response:
        """Redeliver (or, in a dry run, count) the finished events of a window."""
        body = serializers.ReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("trigger") and not Trigger.objects.filter(name=data["trigger"]).exists():
            raise exceptions.ValidationError({"trigger": "No trigger with this name."})
        window = Replay(
            since=data["since"],
            until=data["until"],
            statuses=tuple(data["status"]),
            triggers=(data["trigger"],) if data.get("trigger") else (),
            types=(data["type"],) if data.get("type") else (),
        )
        by_trigger = window.count_by_trigger()
        count = sum(by_trigger.values()) if data["dry_run"] else replay(window)
        return Response({"dry_run": data["dry_run"], "count": count, "by_trigger": by_trigger})


class InvocationCursorPagination(CursorPagination):
    """Newest attempt first; stable under inserts."""

    ordering = "-invoked_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(
        summary="List delivery attempts across events, newest first",
        parameters=[
            OpenApiParameter("trigger", str, description="Trigger name."),
            OpenApiParameter("status_code", int, description="HTTP status of the reply."),
            OpenApiParameter("succeeded", bool),
            OpenApiParameter("invoked_after", OpenApiTypes.DATETIME),
            OpenApiParameter("invoked_before", OpenApiTypes.DATETIME),
        ],
        responses={200: serializers.InvocationListSerializer(many=True), **ERRORS},
    ),
)
class InvocationViewSet(EventingAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Every delivery attempt, of one trigger or all (Hasura's invocation logs)."""

    queryset = InvocationLog.objects.all()
    serializer_class = serializers.InvocationListSerializer
    pagination_class = InvocationCursorPagination

    def get_queryset(self):
        """Filtered by the query parameters, each with its event (one query)."""
        params = serializers.InvocationFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        return filter_invocations(
            InvocationLog.objects.select_related("event").defer("event__payload"),
            **params.validated_data,
        )


class NamedModelViewSet(EventingAPIMixin, viewsets.ModelViewSet):
    """CRUD by name; PUT is not offered (PATCH changes some fields)."""

    lookup_field = "name"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_object(self):
        """404 for a name no object can have (before it reaches the database)."""
        if not types.NAME_RE.match(self.kwargs.get(self.lookup_field, "")):
            raise exceptions.NotFound("No object with this name.")
        return super().get_object()

    def get_success_headers(self, data: Any) -> dict[str, str]:
        """Location: the new object's URL (DRF's default copies a `url` field: the webhook's)."""
        return {"Location": self.request.build_absolute_uri(f"{self.request.path}{data['name']}/")}


@extend_schema_view(
    list=extend_schema(responses={200: serializers.TriggerSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(responses={200: serializers.TriggerSerializer, **ERRORS}),
    create=extend_schema(responses={201: serializers.TriggerSerializer, **ERRORS}),
    partial_update=extend_schema(responses={200: serializers.TriggerSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class TriggerViewSet(NamedModelViewSet):
    """Triggers, validated like the admin validates them."""

    queryset = Trigger.objects.select_related("circuit")
    serializer_class = serializers.TriggerSerializer
    action_permissions = {"test": ["triggers.change_trigger"]}

    def get_serializer_context(self) -> dict:
        """The signing secret is shown once: in the answer to the request creating the trigger
        (the receiver needs it); afterwards it is masked like header values."""
        return {**super().get_serializer_context(), "reveal_secret": self.action == "create"}

    def perform_create(self, serializer) -> None:
        """Create through the triggers-changed service: capture follows in the same transaction."""
        with triggers_changing(self.get_queryset().db):
            serializer.save()

    def perform_update(self, serializer) -> None:
        """Update through the triggers-changed service."""
        with triggers_changing(serializer.instance._state.db):
            serializer.save()

    def perform_destroy(self, instance: Trigger) -> None:
        """Delete through the triggers-changed service."""
        with triggers_changing(instance._state.db):
            instance.delete()

    @extend_schema(
        summary="Fire a test event at this trigger and report the outcome",
        request=serializers.TestTriggerSerializer,
        responses={200: serializers.TestTriggerResultSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, name: str | None = None) -> Response:
        """Record a test event for this trigger only, deliver it now, and say what happened."""
        trigger = self.get_object()
        if not trigger.enabled or trigger.paused:
            raise Conflict(f"Trigger {trigger.name} is disabled or paused; enable it to test.")
        body = serializers.TestTriggerSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        payload = body.validated_data.get("payload")
        event = record_test_event(
            trigger, {"test": True} if payload is None else payload, source="test"
        )
        [result] = synchronous.deliver_now([event])
        event = EventLog.objects.prefetch_related("invocations").get(id=event.id)
        return Response(
            {
                "delivered": synchronous.delivered(result),
                "status_code": result.response.status_code if result.response else None,
                "outcome": event.status,
                "remark": event.remark or result.skipped,
                "response": queueing.reply_of(result),
                "event": serializers.EventDetailSerializer(event).data,
            }
        )


@extend_schema_view(
    list=extend_schema(responses={200: serializers.EventTypeSerializer(many=True), **ERRORS}),
    retrieve=extend_schema(responses={200: serializers.EventTypeSerializer, **ERRORS}),
    create=extend_schema(responses={201: serializers.EventTypeSerializer, **ERRORS}),
    partial_update=extend_schema(responses={200: serializers.EventTypeSerializer, **ERRORS}),
    destroy=extend_schema(responses={204: None, **ERRORS}),
)
class EventTypeViewSet(NamedModelViewSet):
    """Custom event types: JSON Schema and queue rule."""

    queryset = EventType.objects.all()
    serializer_class = serializers.EventTypeSerializer
