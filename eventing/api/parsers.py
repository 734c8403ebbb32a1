"""Reading request bodies: size-capped before and while reading, JSON that every database stores."""

from __future__ import annotations

import io
import json
from typing import Any

from django.core.handlers.wsgi import LimitedStream
from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from eventing.api.errors import LengthRequired, PayloadTooLarge
from eventing.conf import settings
from eventing.models import MAX_PAYLOAD_DEPTH

# A body nests its payloads a few levels down ({"events": [{"payload": ...}]}): deeper than
# this no payload can be valid, and DRF's own checks (json.dumps in JSONField) would recurse
# into the interpreter's limit and answer 500 instead of 400.
MAX_BODY_DEPTH = MAX_PAYLOAD_DEPTH + 5

BODY_METHODS = ("POST", "PUT", "PATCH")


def body_limit() -> int:
    """Largest request body accepted (EVENTING["MAX_PAYLOAD_BYTES"])."""
    return int(settings.MAX_PAYLOAD_BYTES)


def too_large(size_text: str) -> PayloadTooLarge:
    """The 413 error, naming the limit and the setting."""
    return PayloadTooLarge(
        f"The request body is {size_text}; the limit is {body_limit()} bytes "
        "(EVENTING['MAX_PAYLOAD_BYTES'])."
    )


def check_body_headers(request: Request) -> None:
    """Refuse an oversized or untyped body from its headers alone, before reading any of it."""
    if request.method not in BODY_METHODS:
        return
    meta = request._request.META
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise exceptions.ParseError("Content-Length is not a number.") from None
    if length > body_limit():
        raise too_large(f"{length} bytes")
    chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    if (length or chunked) and not meta.get("CONTENT_TYPE"):
        # DRF would treat a body without a Content-Type as empty; say what is wrong instead.
        raise exceptions.UnsupportedMediaType(
            "", detail="Send the body as JSON with Content-Type: application/json."
        )
    if chunked and not length:
        read_chunked_body(request)


def read_chunked_body(request: Request) -> None:
    """Read a chunked body (no Content-Length) up to the cap, so that the parser sees it.

    Django and DRF take a request without Content-Length for one without a body. A server
    that de-chunks and ends the input stream (gunicorn sets wsgi.input_terminated) lets us
    read to the end; any other could block on the socket, so the client gets a 411.
    """
    django_request = request._request
    meta = django_request.META
    if not meta.get("wsgi.input_terminated"):
        raise LengthRequired(
            "This server cannot read a chunked body; send it with a Content-Length header."
        )
    limit = body_limit()
    stream = meta["wsgi.input"]
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        raise too_large(f"over {limit} bytes")
    body = b"".join(chunks)
    # From here on the request reads as if it had come with this Content-Length (Django built
    # its stream, with length 0, before we could know it).
    meta["CONTENT_LENGTH"] = str(len(body))
    django_request._stream = LimitedStream(io.BytesIO(body), len(body))


class BoundedJSONParser(BaseParser):
    """JSON parser that reads at most MAX_PAYLOAD_BYTES + 1 bytes and refuses what it cannot store.

    Chunked bodies carry no Content-Length, so the cap applies while reading too. NaN and
    Infinity, NUL characters and lone surrogates are refused: PostgreSQL's jsonb cannot hold
    them and the webhook body must be valid JSON.
    """

    media_type = "application/json"

    def parse(
        self, stream, media_type: str | None = None, parser_context: dict | None = None
    ) -> Any:
        """Parse the body; 413 when too large, 400 naming the position when malformed."""
        limit = body_limit()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise too_large(f"over {limit} bytes")
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise exceptions.ParseError(f"The body is not valid {encoding} text.") from None
        try:
            value = json.loads(text, parse_constant=reject_constant)
        except RecursionError:
            raise exceptions.ParseError("Malformed JSON: nested too deeply.") from None
        except ValueError as exc:
            raise exceptions.ParseError(f"Malformed JSON: {exc}") from None
        check_storable(value)
        return value


def reject_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


def check_storable(value: Any) -> None:
    """Raise ParseError naming the path of a string no database can keep, or of a body too deep."""
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            where = path if len(path) <= 60 else f"{path[:60]}…"
            raise exceptions.ParseError(
                f"{where}: nested deeper than {MAX_PAYLOAD_DEPTH} levels "
                f"(payloads may nest at most {MAX_PAYLOAD_DEPTH})."
            )
        if isinstance(item, str):
            check_text(item, path or "(body)")
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else key
                check_text(key, f"key {child_path!r}")
                stack.append((child_path, child, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child, depth + 1) for index, child in enumerate(item))


def check_text(text: str, where: str) -> None:
    """No NUL characters, no lone surrogates."""
    if "\x00" in text:
        raise exceptions.ParseError(f"{where}: NUL characters (\\u0000) cannot be stored.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise exceptions.ParseError(f"{where}: invalid Unicode (a lone surrogate).") from None
