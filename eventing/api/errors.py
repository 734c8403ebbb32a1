"""One JSON error shape for every failure of the API, and no stack trace ever."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from eventing.recording.rules import django_validation_detail

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    """The request body is larger than EVENTING["MAX_PAYLOAD_BYTES"]."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class LengthRequired(exceptions.APIException):
    """A chunked body the server cannot tell the end of: send a Content-Length instead."""

    status_code = status.HTTP_411_LENGTH_REQUIRED
    default_detail = "Send the body with a Content-Length header."
    default_code = "length_required"


class Conflict(exceptions.APIException):
    """The request contradicts the resource's state (e.g. cancelling a processed event)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class BadGateway(exceptions.APIException):
    """A synchronous delivery got no acceptable reply from any webhook."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The webhook did not accept the event."
    default_code = "webhook_failed"


class InternalError(exceptions.APIException):
    """Last resort for a bug: a JSON 500 that tells nothing about the code."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = "Internal error; it has been logged."
    default_code = "internal_error"


def as_api_exception(exc: Exception) -> exceptions.APIException:
    """Map Django's and the database's exceptions to DRF ones; anything else is a bug."""
    if isinstance(exc, exceptions.APIException):
        return exc
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(django_validation_detail(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(str(exc))
    if isinstance(exc, IntegrityError):
        # Only reachable through a race (two requests creating the same name or key at once).
        return Conflict("A concurrent request created the same object; retry the request.")
    if isinstance(exc, DatabaseError):
        logger.exception("Database error in the eventing API")
        return exceptions.APIException("The database refused the request; it has been logged.")
    logger.exception("Unexpected error in the eventing API")
    return InternalError()


def flatten(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(path, message) pairs of a DRF error detail, e.g. ("[3].payload.qty", "…")."""
    if isinstance(detail, dict):
        pairs = []
        for key, value in detail.items():
            if isinstance(key, int) or str(key).isdigit():
                # A ListSerializer's errors are keyed by position.
                pairs += flatten(value, f"{prefix}[{key}]")
                continue
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            pairs += flatten(value, path)
        return pairs
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [(prefix, str(item)) for item in detail]
        pairs = []
        for index, value in enumerate(detail):
            if value:
                pairs += flatten(value, f"{prefix}[{index}]")
        return pairs
    return [(prefix, str(detail))]


def error_body(exc: exceptions.APIException, detail: Any) -> dict[str, Any]:
    """`{"error": code, "detail": "…", "fields": {…}}`: a sentence naming the problem."""
    code = exc.default_code
    if isinstance(exc, exceptions.ValidationError):
        pairs = flatten(detail)
        message = "; ".join(f"{path}: {text}" if path else text for path, text in pairs)
        return {"error": "invalid", "detail": message or "Invalid input.", "fields": detail}
    if isinstance(detail, dict) and "detail" in detail:
        detail = detail["detail"]
    codes = exc.get_codes()
    if isinstance(codes, str):
        code = codes
    return {"error": code, "detail": str(detail)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler of the eventing views: JSON for every error, 500s without a trace."""
    api_exc = as_api_exception(exc)
    response = drf_exception_handler(api_exc, context)
    if response is None:  # pragma: no cover - DRF handles every APIException
        response = Response(status=api_exc.status_code)
    response.data = error_body(api_exc, api_exc.detail)
    return response
