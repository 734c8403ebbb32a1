"""Signed webhook requests for a receiver's own tests: valid, or tampered in a named way."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from eventing.conf import settings
from eventing.models import EventLog
from eventing.webhooks import signing
from eventing.webhooks.request import build_request, encode_body
from triggers.defaults import new_signing_secret
from triggers.models import Trigger

# The ways a request can be spoiled, each of which a receiver must refuse.
TAMPERINGS = {
    "body": "the body was changed after signing (the signature no longer matches)",
    "signature": "webhook-signature was made with another whsec_ secret",
    "token": "X-SC-Token was signed with a secret the receiver does not hold",
    "expired": "X-SC-Token expired and webhook-timestamp is outside the tolerance",
}
# How far back an "expired" request was signed: past any token lifetime and timestamp window.
EXPIRED_BY_S = 3600


@dataclass
class SignedRequest:
    """A webhook request exactly as Eventing sends it: body bytes and headers."""

    body: bytes
    headers: dict[str, str]
    signing_secret: str
    event_id: str

    def json(self) -> Any:
        """The body parsed: the CloudEvents envelope."""
        return json.loads(self.body)

    def post(self, client, path: str):
        """POST it with a Django (or DRF) test client; the client's response."""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-type"}
        return client.post(path, data=self.body, content_type="application/json", headers=headers)


def signed_request(
    payload: Any = None,
    *,
    type: str = "test_event",
    signing_secret: str | None = None,
    trigger: str = "test_trigger",
    attempt: int = 1,
    event_id: uuid.UUID | str | None = None,
    tamper: str | None = None,
) -> SignedRequest:
    """A webhook request carrying `payload` as an event of `type`, built and signed by the
    code that signs real deliveries: X-SC-Token with EVENTING["SECRETS"][0] (or SIGNING_KEY),
    webhook-signature with `signing_secret` (a fresh whsec_ secret if not given).

    `tamper` spoils it in one of the ways of TAMPERINGS ("body", "signature", "token",
    "expired"), each of which `eventing.verify` refuses; the `standardwebhooks` package, which
    checks `webhook-signature` only, refuses all but "token".
    """
    if tamper is not None and tamper not in TAMPERINGS:
        raise ValueError(f"tamper must be one of {sorted(TAMPERINGS)}, not {tamper!r}")
    secret = signing_secret or new_signing_secret()
    event = EventLog(
        id=uuid.UUID(str(event_id)) if event_id else uuid.uuid4(),
        type=type,
        payload={} if payload is None else payload,
        trigger_name=trigger,
        created_at=timezone.now(),
    )
    hook = Trigger(name=trigger, type=type, url="https://receiver.invalid/", signing_secret=secret)
    request = build_request(event, hook, attempt)
    body, headers = request.body, dict(request.headers)
    if tamper == "body":
        envelope = json.loads(body)
        envelope["data"] = {"tampered": True, "was": envelope["data"]}
        body = encode_body(envelope)
    elif tamper == "signature":
        headers["webhook-signature"] = signing.webhook_signature(
            new_signing_secret(), headers["webhook-id"], int(headers["webhook-timestamp"]), body
        )
    elif tamper == "token":
        headers["X-SC-Token"] = f"Bearer {signing.sc_token(secret=other_secret())}"
    elif tamper == "expired":
        then = int(time.time()) - max(EXPIRED_BY_S, int(settings.TOKEN_TTL_S) * 2)
        headers["X-SC-Token"] = f"Bearer {signing.sc_token(then)}"
        headers["webhook-timestamp"] = str(then)
        headers["webhook-signature"] = signing.webhook_signature(
            secret, headers["webhook-id"], then, body
        )
    return SignedRequest(body=body, headers=headers, signing_secret=secret, event_id=str(event.id))


def other_secret() -> str:
    """An HS256 secret that is none of this project's."""
    return "not-a-secret-of-this-project-" + uuid.uuid4().hex
