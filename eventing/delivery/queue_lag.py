"""The queue-lag note as a delivery policy: a claim tells the sweeper how long messages wait."""

from __future__ import annotations

from eventing.delivery.policy import Policy, Run
from eventing.dispatch.lag import note_claim
from eventing.models import EventLog


class QueueLagPolicy(Policy):
    """Notes how late the first claimed row's message came (eventing/dispatch/lag.py), so the
    sweeper does not take messages behind a long queue for lost."""

    name = "queue_lag"

    def after_claim(self, run: Run, claimed: list[EventLog]) -> None:
        if claimed:
            note_claim(claimed[0], run.now)
