"""The webhook call: build the CloudEvents request, POST it, read a bounded response."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from urllib3 import BaseHTTPResponse, PoolManager, Timeout
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from eventing.conf import settings
from eventing.models import MAX_PAYLOAD_DEPTH, EventLog
from eventing.store.secrets import signing_secrets
from eventing.webhooks import signing, transform
from eventing.webhooks.client import Watchdog, pool_manager, scrubbed_logs
from eventing.webhooks.scrubbing import REDACTED, margin, redact, secret_values
from eventing.webhooks.ssrf import BlockedAddressError
from eventing.webhooks.transform import Shaped, TransformError
from triggers.defaults import env_readable
from triggers.validation import ENV_PLACEHOLDER_RE

# Header names whose values are credentials wherever they come from.
SENSITIVE_HEADER_RE = re.compile(r"(auth|token|secret|signature|key|cookie|password)", re.I)

_local = threading.local()


class WebhookConfigError(Exception):
    """The trigger cannot be called as configured (e.g. a missing environment variable)."""


class TemplateFailed(WebhookConfigError):
    """The trigger's request transform failed over this event: the same would fail again."""


@dataclass
class WebhookRequest:
    """What is sent, plus the copy of its headers that is safe to store."""

    url: str
    headers: dict[str, str]
    body: bytes
    redacted_headers: dict[str, str]
    logged_url: str
    # Values that must never be stored or logged, in every form they may be echoed in:
    # scrubbed from errors, echoed responses and urllib3's log lines (see scrubbing.redact()).
    secrets: tuple[str, ...] = ()
    # POST unless the trigger's request transform says otherwise.
    method: str = "POST"
    # The body as stored in the invocation log: a rendered body may quote resolved
    # environment values (through `base_url`), which are redacted here.
    logged_body: str = ""


@dataclass
class WebhookResponse:
    """What came back (or why nothing did)."""

    status_code: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    truncated: bool = False
    error: str = ""
    # The SSRF guard refused the address: a permanent failure, never retried.
    blocked: bool = False
    # The request could not be built (a request template failed): permanent too, as the same
    # template over the same event fails again.
    unbuildable: bool = False
    # Nothing left for the receiver (our configuration or our bug): says nothing about it.
    not_sent: bool = False
    duration_ms: int = 0
    # The request as stored in the invocation log (secrets redacted).
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """A 2xx read in full within the timeout (the body may still refuse the event: the
        success rule is eventing.delivery.outcome.accepted)."""
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300

    def json(self) -> Any:
        """The body parsed as JSON, or None if it is not (or was cut, or nests too deep)."""
        if self.truncated or not self.body:
            return None
        try:
            parsed = json.loads(self.body)
        except (ValueError, RecursionError):
            # RecursionError: a receiver's `[[[[…` within MAX_RESPONSE_BYTES is still a reply.
            return None
        # Parsed, but nested so deep that handing it on (rendering it in an API answer, walking
        # it) could still hit the recursion limit: treated as not JSON, like a payload would be.
        return None if nests_deeper_than(parsed, MAX_PAYLOAD_DEPTH) else parsed


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects in `value` nest more than `limit` levels (without recursing)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def cloudevent(event: EventLog) -> dict[str, Any]:
    """The CloudEvents 1.0 envelope of an event; `time` is when it was due (Space Cloud's)."""
    # Space Cloud's `time` is the event's timestamp plus its delay: when it was due. A retry's
    # row is due later, so its `time` is that retry's due time.
    due = event.deliver_at or event.created_at  # an unsaved row (a test) may have neither set
    return {
        "specversion": "1.0",
        "id": str(event.id),
        "type": event.type,
        "source": settings.INSTANCE_ID,
        "time": due.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "datacontenttype": "application/json",
        "data": event.payload,
    }


def encode_body(envelope: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes signed and sent."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def resolve_env(template: str, what: str, *, resolve: bool = True) -> str:
    """Fill {{ENV_VAR}} placeholders from the environment; a missing one is a config error.

    With `resolve` False (a preview, which a person reads) the placeholders are kept as written.
    """
    if not resolve:
        return template

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if not env_readable(name):
            raise WebhookConfigError(f"{what}: environment variable {name} is not in TRIGGER_ENV")
        if name not in os.environ:
            raise WebhookConfigError(f"{what}: environment variable {name} is not set")
        return os.environ[name]

    return ENV_PLACEHOLDER_RE.sub(replace, template)


def build_request(
    event: EventLog, trigger, attempt: int, *, resolve: bool = True
) -> WebhookRequest:
    """Everything a webhook call sends, for attempt number `attempt`.

    A trigger's request transform (eventing.webhooks.transform) may set the method, URL, query,
    some headers and the body; the signature is always over the body that is sent. Raises
    WebhookConfigError (TemplateFailed when a template fails).

    Environment values are read only with `resolve` (the worker about to send): a preview
    builds the request with the placeholders as written, so no person ever sees a value.
    """
    envelope = cloudevent(event)
    url = resolve_env(trigger.url, "url", resolve=resolve)
    shaped = Shaped()
    if trigger.transformed:
        try:
            shaped = transform.shape(trigger, transform.variables(event, envelope, trigger, url))
        except TransformError as exc:
            raise TemplateFailed(f"Request transform failed: {exc}") from None
        except transform.RendererUnavailable as exc:
            # Not the template's fault: a failed attempt like any other, retried.
            raise WebhookConfigError(f"Request transform not rendered: {exc}") from None
    body = shaped.body if shaped.body is not None else encode_body(envelope)
    timestamp = int(time.time())
    msg_id = str(event.id)
    token = f"Bearer {signing.sc_token(timestamp)}"
    secrets_now = signing_secrets(trigger)
    headers = {
        **shaped.headers,
        "Content-Type": shaped.content_type,
        "User-Agent": settings.USER_AGENT,
        "X-SC-Token": token,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.webhook_signatures(secrets_now, msg_id, timestamp, body),
        "X-Eventing-Attempt": str(attempt),
        "X-Eventing-Trigger": trigger.name,
    }
    if trigger.send_authorization:
        # Space Cloud sends its trigger token as Authorization too; receivers ported from it
        # may read that header. The same signed claims as X-SC-Token.
        headers["Authorization"] = token
    sensitive = {"X-SC-Token", "Authorization", "webhook-signature"}
    sensitive.update(name for name in shaped.headers if SENSITIVE_HEADER_RE.search(name))
    redacted = {name: REDACTED if name in sensitive else value for name, value in headers.items()}
    for header in trigger.headers or []:
        name = header["name"]
        if header.get("value_from_env"):
            env = header["value_from_env"]
            if not resolve:
                headers[name] = redacted[name] = REDACTED
                continue
            if not env_readable(env):
                raise WebhookConfigError(
                    f"header {name}: environment variable {env} is not in TRIGGER_ENV"
                )
            if env not in os.environ:
                raise WebhookConfigError(f"header {name}: environment variable {env} is not set")
            headers[name] = os.environ[env]
            redacted[name] = REDACTED
        else:
            headers[name] = header.get("value", "")
            redacted[name] = REDACTED if SENSITIVE_HEADER_RE.search(name) else headers[name]
    secrets = [headers[name] for name, shown in redacted.items() if shown == REDACTED]
    if resolve:
        secrets += [os.environ[name] for name in ENV_PLACEHOLDER_RE.findall(trigger.url)]
    secrets += [*secrets_now, *(settings.SECRETS or [])]
    secrets = secret_values(secrets)
    # The stored URL keeps the placeholders: resolved values may be credentials. Templates see
    # them through `base_url`, so whatever a rendered URL, header or body echoes is redacted.
    logged_url = trigger.url if shaped.url is None else redact(shaped.url, secrets)
    for name in shaped.headers:
        if redacted.get(name) not in (None, REDACTED):
            redacted[name] = redact(redacted[name], secrets)
    logged_body = logged_text(body)
    if shaped.body is not None:
        logged_body = redact(logged_body, secrets)
    return WebhookRequest(
        url=shaped.url or url,
        headers=headers,
        body=body,
        redacted_headers=redacted,
        logged_url=logged_url,
        secrets=secrets,
        method=shaped.method,
        logged_body=logged_body,
    )


def logged_text(body: bytes) -> str:
    """The request body as stored: text, cut like responses are."""
    return body[: settings.MAX_PAYLOAD_BYTES + 1024].decode("utf-8", errors="replace")


def http() -> PoolManager:
    """This thread's pool manager (connections are reused across deliveries)."""
    manager = getattr(_local, "http", None)
    if manager is None:
        # Every connection checks its peer against the SSRF policy and obeys the deadline.
        # urllib3 itself, not requests: a call costs a fifth of the CPU, and proxies or netrc
        # from the environment can never reroute a webhook.
        manager = _local.http = pool_manager()
    return manager


def send(request: WebhookRequest, timeout_s: float) -> WebhookResponse:
    """Send the request (POST unless transformed); never raises. Redirects are not followed;
    the body is bounded.

    `timeout_s` is a hard deadline for the whole call (connect, headers and body): a watchdog
    shuts the socket down when it passes, however slowly the receiver dribbles bytes.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    result = WebhookResponse()
    watchdog = Watchdog(timeout_s)
    try:
        with watchdog, scrubbed_logs(request.secrets):
            response = http().urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                timeout=Timeout(connect=timeout_s, read=timeout_s),
                redirect=False,
                retries=False,
                preload_content=False,
            )
            try:
                result.status_code = response.status
                result.headers = dict(response.headers)
                result.body, result.truncated = read_text(response, deadline, request.secrets)
            finally:
                # Read to the end, the connection is already back in the pool; cut short (a
                # bounded body, a timeout) this closes it, so a half-read socket is never reused.
                response.close()
    except BlockedAddressError as exc:
        result.error, result.blocked = str(exc), True
    except Exception as exc:  # noqa: BLE001 - any failure of the call is a failed attempt
        if watchdog.fired or is_timeout(exc):
            result.error = f"Timed out after {timeout_s:g} s: {exc}"
        else:
            result.error = f"{type(exc).__name__}: {exc}"
    if watchdog.fired and not result.error:
        # Cut mid-headers, http.client can still hand back a status with half the headers:
        # a response the deadline interrupted is never a success.
        result.error = f"Timed out after {timeout_s:g} s: the response did not finish in time"
    # Errors quote the URL, receivers echo headers back: no secret may reach the logs. Then
    # keep the remark readable (exception texts can quote whole responses); redacting first so
    # the cut never splits a secret.
    result.error = redact(result.error, request.secrets)[:1000]
    result.headers = {
        name: redact(value, request.secrets) for name, value in result.headers.items()
    }
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def is_timeout(exc: Exception) -> bool:
    """Whether the call failed by running out of time (a refused connection did not: urllib3
    files NewConnectionError under its connect timeouts)."""
    if isinstance(exc, NewConnectionError):
        return False
    return isinstance(exc, (TimeoutError, ConnectTimeoutError, ReadTimeoutError))


def read_text(
    response: BaseHTTPResponse, deadline: float, secrets: tuple[str, ...]
) -> tuple[str, bool]:
    """The body as text, cut at MAX_RESPONSE_BYTES and scrubbed; returns (text, truncated).

    A little more than the limit is read, so a secret echoed across the cut is still
    recognised and redacted whole instead of leaving its first half in the log.
    """
    limit = settings.MAX_RESPONSE_BYTES
    body, truncated = read_bounded(response, deadline, limit + margin(secrets))
    encoding = charset(response.headers)
    truncated = truncated or len(body) > limit
    text = body.decode(encoding, errors="replace")
    cut = len(body[:limit].decode(encoding, errors="ignore")) if truncated else None
    return redact(text, secrets, cut), truncated


def read_bounded(response: BaseHTTPResponse, deadline: float, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes before `deadline`; returns (body, truncated)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.stream(8192):
        if time.monotonic() > deadline:
            raise TimeoutError("Timed out reading the response body")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


CHARSET_RE = re.compile(r"charset=[\"']?([\w.:-]+)", re.I)


def charset(headers) -> str:
    """The body's declared text encoding, if Python knows it; else UTF-8."""
    match = CHARSET_RE.search(headers.get("Content-Type", ""))
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return "utf-8"
