"""A fake receiver: events go through the real delivery (request, signing, outcome rules,
invocation log), and only the HTTP exchange is replaced by an answer the test chooses."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from urllib3.response import HTTPResponse

from eventing.delivery.deliver import DeliveryResult, deliver_event
from eventing.dispatch.publish import held_by
from eventing.models import EventLog, EventStatus
from eventing.store import trigger_cache
from eventing.webhooks.request import exchanged_with
from eventing.webhooks.verify import verify_webhook


@dataclass
class Reply:
    """What the fake receiver answers: a status, a body (bytes, text, or JSON for a dict or
    list) and headers."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        """The body as bytes, with a Content-Type when the body is JSON."""
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            headers.setdefault("Content-Type", "application/json")
            return json.dumps(self.body).encode(), headers
        if isinstance(self.body, str):
            return self.body.encode(), headers
        return bytes(self.body), headers


@dataclass
class ReceivedRequest:
    """One webhook call as the receiver got it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed (a CloudEvents envelope unless the trigger transforms it)."""
        return json.loads(self.body)

    @property
    def data(self) -> Any:
        """The envelope's `data`: the event's payload."""
        return self.json()["data"]

    def verify(self, signing_secret: str, **keys: Any) -> dict[str, Any]:
        """Check it as a receiver would (eventing.verify.verify_webhook); the token's claims."""
        return verify_webhook(self.body, self.headers, signing_secret=signing_secret, **keys)


class FakeReceiver:
    """Receives every webhook this process sends while it is active (see `fake_receiver`).

    Rows recorded meanwhile are delivered on commit (under Django's TestCase: inside
    `captureOnCommitCallbacks(execute=True)`) or by `flush()`, one attempt per row and flush,
    in the calling thread. `respond` (a function of the ReceivedRequest returning a Reply, or
    raising an OSError for a connection failure) or `reply()` sets the answer.
    """

    def __init__(self, reply: Reply | None = None, respond: Callable | None = None) -> None:
        self.answer = reply or Reply()
        self.respond = respond
        self.requests: list[ReceivedRequest] = []
        self.results: list[DeliveryResult] = []
        # The ids of the rows handed over, in order (a dict: no repeats, quick look-ups).
        self.event_ids: dict = {}

    def reply(self, status: int = 200, body: Any = b"", headers: Mapping | None = None) -> None:
        """Answer every following request with this status, body and headers."""
        self.answer, self.respond = Reply(status, body, dict(headers or {})), None

    # The HTTP exchange (what the webhook client calls instead of the network)

    def urlopen(self, method: str, url: str, body: bytes = b"", headers=None, **_: Any):
        """Record the request and answer it; the pipeline reads the answer as a real one."""
        request = ReceivedRequest(method=method, url=url, headers=dict(headers or {}), body=body)
        self.requests.append(request)
        answer = self.respond(request) if self.respond else self.answer
        content, reply_headers = answer.encoded()
        return HTTPResponse(
            body=io.BytesIO(content),
            headers=reply_headers,
            status=answer.status,
            preload_content=False,
            decode_content=False,
            request_method=method,
            request_url=url,
        )

    # The rows to deliver

    def take(self, rows: list[EventLog], using: str) -> None:
        """Rows to be sent (in place of the broker): delivered when their transaction commits."""
        self.event_ids.update(dict.fromkeys(row.id for row in rows))
        transaction.on_commit(self.flush, using=using)

    def flush(self) -> list[DeliveryResult]:
        """One attempt of every staged row taken so far, whatever its due time, and of the rows
        the attempts cause or release (follow-ups, dead letters, the next of an ordering key);
        the results, with why each row left over was not attempted."""
        tried: set = set()
        results: list[DeliveryResult] = []
        while True:
            due = (
                EventLog.objects.filter(id__in=list(self.event_ids), status=EventStatus.STAGED)
                .exclude(id__in=tried)
                .order_by("created_at")
                .values_list("id", "trigger_id")
            )
            done = [(pk, deliver_event(pk, trigger_id, force=True)) for pk, trigger_id in due]
            attempted = [result for _, result in done if result.outcome is not None]
            tried.update(event_id for event_id, result in done if result.outcome is not None)
            if not attempted:
                # Nothing moved this round: what is left waits for a paused trigger, a rate
                # limit or another flush.
                results += [result for _, result in done]
                self.results += results
                return results
            results += attempted


@contextlib.contextmanager
def fake_receiver(
    status: int = 200,
    body: Any = b"",
    headers: Mapping | None = None,
    *,
    respond: Callable | None = None,
) -> Iterator[FakeReceiver]:
    """While the block runs, every webhook of this process goes to a FakeReceiver answering
    `status`/`body`/`headers` (or what `respond(request)` returns); no broker, no network."""
    receiver = FakeReceiver(Reply(status, body, dict(headers or {})), respond)
    # Triggers of a rolled-back test must not linger in the per-process cache.
    trigger_cache.invalidate()
    with held_by(receiver.take), exchanged_with(receiver):
        yield receiver
