"""A local webhook receiver for developing triggers: verifies and pretty-prints each delivery.

`manage.py eventing_listen` serves it; the logic is here so tests and other tools can use it.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from django.db import close_old_connections, connection

from eventing.webhooks.verify import WebhookVerificationError, verify_sc_token, verify_signature
from triggers.models import Trigger

# The largest body the listener reads; deliveries are capped at MAX_PAYLOAD_BYTES anyway.
MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass
class Verdict:
    """What the listener concluded about one request."""

    accepted: bool
    reason: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    signature: str = ""  # "verified", or why it was not checked


def header(headers: Mapping[str, str], name: str) -> str:
    """A header value by case-insensitive name ('' when absent)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return ""


def trigger_secret(name: str) -> str | None:
    """The signing secret of the trigger called `name`, from the database (None if unknown)."""
    close_old_connections()
    try:
        return Trigger.objects.filter(name=name).values_list("signing_secret", flat=True).first()
    finally:
        # Each request runs in its own thread: do not leave a connection per thread behind.
        connection.close()


def verify_delivery(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Sequence[str] | None = None,
    signing_secret: str | None = None,
    lookup: Callable[[str], str | None] | None = trigger_secret,
) -> Verdict:
    """Check the X-SC-Token (always) and the webhook-signature (when a secret is known).

    The signature secret is `signing_secret`, or the secret of the trigger named in
    X-Eventing-Trigger found through `lookup`.
    """
    try:
        claims = verify_sc_token(header(headers, "X-SC-Token"), secrets)
    except WebhookVerificationError as exc:
        return Verdict(False, str(exc.args[0] if exc.args else exc))
    secret = signing_secret
    trigger = header(headers, "X-Eventing-Trigger")
    source = "--secret"
    if secret is None and trigger and lookup is not None:
        secret = lookup(trigger)
        source = f"the secret of trigger {trigger}"
    if secret is None:
        why = f"no trigger named {trigger!r} here" if trigger else "no X-Eventing-Trigger"
        return Verdict(True, claims=claims, signature=f"not checked ({why}; pass --secret whsec_…)")
    try:
        verify_signature(body, headers, secret)
    except WebhookVerificationError as exc:
        return Verdict(
            False, f"{exc.args[0] if exc.args else exc} (checked with {source})", claims=claims
        )
    return Verdict(True, claims=claims, signature=f"verified with {source}")


def pretty_body(body: bytes) -> str:
    """The body as indented JSON, or as text when it is not JSON."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body.decode("utf-8", errors="replace")


def describe(
    path: str, headers: Mapping[str, str], body: bytes, verdict: Verdict, status: int
) -> str:
    """A readable block for one request: summary line, checks, then the body."""
    now = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = {}
    envelope = envelope if isinstance(envelope, dict) else {}
    summary = " ".join(
        part
        for part in (
            f"── {now} POST {path} → {status}",
            str(envelope.get("type") or ""),
            f"trigger={header(headers, 'X-Eventing-Trigger') or '?'}",
            f"attempt={header(headers, 'X-Eventing-Attempt') or '?'}",
            f"id={header(headers, 'webhook-id') or envelope.get('id') or '?'}",
        )
        if part
    )
    lines = [summary]
    if verdict.accepted:
        claims = verdict.claims
        lines.append(f"   ✔ X-SC-Token valid (id={claims.get('id')}, role={claims.get('role')})")
        mark = "✔" if verdict.signature.startswith("verified") else "!"
        lines.append(f"   {mark} webhook-signature {verdict.signature}")
    else:
        lines.append(f"   ✘ REJECTED: {verdict.reason}")
    lines.extend("   " + line for line in pretty_body(body).splitlines())
    return "\n".join(lines)


class Listener:
    """An HTTP server on (host, port) that verifies, prints and answers each POST."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9000,
        *,
        out: TextIO,
        secrets: Sequence[str] | None = None,
        signing_secret: str | None = None,
        reply_status: int = 200,
        lookup: Callable[[str], str | None] | None = trigger_secret,
    ) -> None:
        self.out = out
        self.lock = threading.Lock()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass  # the listener prints its own lines

            def do_GET(self) -> None:
                self.answer(200, {"listening": True, "hint": "POST webhook deliveries here."})

            def do_POST(self) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
                body = self.rfile.read(length)
                headers = dict(self.headers)
                verdict = verify_delivery(
                    headers, body, secrets=secrets, signing_secret=signing_secret, lookup=lookup
                )
                status = reply_status if verdict.accepted else 401
                listener.print(describe(self.path, headers, body, verdict, status))
                reply = {"received": True} if verdict.accepted else {"error": verdict.reason}
                self.answer(status, reply)

            def answer(self, status: int, reply: dict[str, Any]) -> None:
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.server.server_address[1]

    def print(self, text: str) -> None:
        """Write one block; a lock keeps concurrent deliveries from interleaving."""
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()

    def serve_forever(self) -> None:
        """Serve until `shutdown()` (or Ctrl-C in the command)."""
        self.server.serve_forever()

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
