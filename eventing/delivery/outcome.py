"""What an attempt's result means for the event: the outcome rules, as a pure function."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from eventing.delivery.backoff import next_delay, parse_retry_after
from eventing.models import EventStatus
from eventing.webhooks.request import WebhookResponse
from triggers.models import TRANSIENT_4XX, RetryPolicy

GONE = 410
RETRY_AFTER_STATUSES = (429, 503)


@dataclass(frozen=True)
class Outcome:
    """The row's next state after an attempt."""

    status: str
    remark: str = ""
    retry_in_s: float | None = None  # set when another attempt is scheduled
    pause_reason: str = ""  # set when the trigger must be paused (410)
    gave_up: bool = False  # retries spent: emit dlq_<trigger>

    @property
    def succeeded(self) -> bool:
        """Whether the webhook took the event."""
        return self.status == EventStatus.PROCESSED


def reply_error(response: WebhookResponse) -> str:
    """The non-empty string `error` of a JSON object reply (Space Cloud: a failed attempt)."""
    if '"error"' not in response.body:
        return ""  # cheap test first: most replies never parse
    reply = response.json()
    error = reply.get("error") if isinstance(reply, dict) else None
    return error if isinstance(error, str) and error else ""


def accepted(response: WebhookResponse) -> bool:
    """The success rule: a 2xx read in full within the timeout, without a transport error,
    unless it is a JSON object with a non-empty string `error` (Space Cloud: a failed attempt).

    The one place this is decided: the row's next state, the invocation's `succeeded`, the
    admin, the API and the metrics all follow from it.
    """
    return response.ok and not reply_error(response)


def describe(response: WebhookResponse) -> str:
    """A one-line, human-readable reason an attempt failed."""
    if response.error:
        return response.error
    code = response.status_code
    if response.ok:
        # Only a reply carrying an `error` member fails with a 2xx; a receiver's text is cut.
        return f"HTTP {code} with error: {reply_error(response)[:200]}"
    if code is not None and 300 <= code < 400:
        location = response.headers.get("Location", "")
        return f"HTTP {code} redirect (not followed){' to ' + location if location else ''}"
    return f"HTTP {code}"


def retried_by_policy(response: WebhookResponse, trigger) -> bool:
    """Whether the trigger's retry policy retries this failed attempt.

    Without a status (timeout, connection error, not sent) it always is; so is a 2xx whose
    body carries an `error` and, except under "listed", a 3xx.
    """
    code = response.status_code
    if code is None or response.error:
        return True
    policy = trigger.retry_policy
    if policy == RetryPolicy.ALL:
        return True
    if policy == RetryPolicy.LISTED:
        return code in trigger.retry_statuses or 200 <= code < 300
    return not 400 <= code < 500 or code in TRANSIENT_4XX


def decide(
    response: WebhookResponse,
    *,
    attempt: int,
    trigger,
    now: dt.datetime,
    rng=random,
    permanent: bool = False,
) -> Outcome:
    """Apply the outcome rules to attempt number `attempt` of `trigger`."""
    if accepted(response):
        return Outcome(EventStatus.PROCESSED)
    reason = describe(response)
    if response.status_code == GONE:
        return Outcome(
            EventStatus.FAILED,
            remark=reason,
            gave_up=True,
            pause_reason=f"Paused: the webhook answered 410 Gone at {now:%Y-%m-%d %H:%M:%S} UTC.",
        )
    if not permanent and not retried_by_policy(response, trigger):
        code = response.status_code
        return Outcome(
            EventStatus.FAILED,
            remark=f"{reason}: {code} is not retried under the trigger's retry policy",
            gave_up=True,
        )
    if permanent or attempt >= trigger.retries + 1:
        suffix = "" if permanent else f" (attempt {attempt} of {trigger.retries + 1})"
        return Outcome(EventStatus.FAILED, remark=reason + suffix, gave_up=True)
    retry_after = None
    if response.status_code in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
    delay = next_delay(attempt, trigger.backoff_base_s, trigger.backoff_max_s, retry_after, rng)
    return Outcome(
        EventStatus.STAGED,
        remark=f"{reason}; attempt {attempt} of {trigger.retries + 1}, next in {delay:.1f} s",
        retry_in_s=delay,
    )
