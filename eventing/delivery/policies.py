"""The delivery policies, in the order their hooks run. A new policy: its own module with a
`Policy` subclass, and one line here."""

from __future__ import annotations

from eventing.delivery.circuit import CircuitPolicy
from eventing.delivery.ordering import OrderingPolicy
from eventing.delivery.queue_lag import QueueLagPolicy
from eventing.delivery.throttle import ThrottlePolicy

POLICIES = (QueueLagPolicy(), ThrottlePolicy(), OrderingPolicy(), CircuitPolicy())
