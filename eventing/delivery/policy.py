"""Delivery policies: named hooks around the one delivery loop, and what they share.

A policy (circuit breaker, throttle, ordering, queue lag) subclasses `Policy`, overrides the
hooks it needs and keeps its state in its own module or in `run.state[policy.name]` for one
pass of the loop. `eventing.delivery.policies` lists them in the order their hooks run; adding
one is its own file and one line there (as Django's MIDDLEWARE, or Celery's bootsteps).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventing.delivery.outcome import Outcome
from eventing.models import EventLog
from eventing.webhooks.request import WebhookResponse
from triggers.models import Trigger

# Why a staged, due row was not claimed when no policy says otherwise.
CLAIMED_ELSEWHERE = "claimed by another worker"
# Claims rows by id; what a policy's `claim` hook wraps.
Claim = Callable[[list], list[EventLog]]


@dataclass
class DeliveryResult:
    """What a delivery did: skipped (with why), too early, or attempted."""

    skipped: str = ""
    early_until: dt.datetime | None = None
    attempt: int = 0
    response: WebhookResponse | None = None
    outcome: Outcome | None = None
    event: EventLog | None = None
    # The ETA of the message that carries the event's next attempt (a retry, or an early
    # arrival's due time); None when there is no next attempt or the sweeper sends it.
    next_message_at: dt.datetime | None = None

    @property
    def retry_in_s(self) -> float | None:
        """Seconds until the next attempt, when the attempt failed and will be retried."""
        return self.outcome.retry_in_s if self.outcome and not self.skipped else None


@dataclass
class Run:
    """One pass of the delivery loop over some of a trigger's events."""

    trigger: Trigger
    now: dt.datetime
    force: bool = False  # a user's test or a synchronous call: due time and circuit skipped
    # Results of rows a policy held back (by event id), handed to the caller with the others.
    results: dict = field(default_factory=dict)
    # Each policy's own state for this pass, under its name.
    state: dict[str, Any] = field(default_factory=dict)
    # When the task delivering this pass began (time.monotonic()), and ids a policy hands it
    # to deliver next, after this pass (rows released into slots the pass freed).
    began: float = 0.0
    follow: list = field(default_factory=list)


class Policy:
    """A delivery policy: every hook does nothing until overridden."""

    name = "policy"

    def admit(self, run: Run, event_ids: list) -> list:
        """The ids that may be attempted now; a result in `run.results` for each one held."""
        return event_ids

    def lease(self, run: Run) -> dt.timedelta:
        """Time added to a claimed row's lease (the row may wait for its turn)."""
        return dt.timedelta(0)

    def claim(self, run: Run, event_ids: list, claim: Claim) -> list[EventLog]:
        """Wrap the claim: the rows to send; a result in `run.results` for each handed back."""
        return claim(event_ids)

    def after_claim(self, run: Run, claimed: list[EventLog]) -> None:
        """The rows were claimed (before any is sent)."""

    def before_send(self, run: Run, event: EventLog) -> None:
        """Just before a claimed row is sent (on its sender thread)."""

    def not_claimed(self, run: Run, results: dict) -> None:
        """Rows staged and due but not claimed: a policy that held them says why."""

    def after_finish(self, run: Run, done: list[DeliveryResult], applied: set) -> None:
        """The attempts were recorded; `applied` are the ids whose outcome was applied."""
