"""factory_boy factories for triggers, event types and test models."""

import factory

from eventing.capture.database import triggers_changing
from tests.testapp.models import Customer, Order
from triggers.models import EventType, Trigger


class TriggerFactory(factory.django.DjangoModelFactory):
    """A custom-event trigger with fast retries; pass type/source/url for others."""

    class Meta:
        model = Trigger

    name = factory.Sequence(lambda n: f"trigger_{n}")
    type = "order_placed"
    source = ""
    url = "http://127.0.0.1:9/ok"
    retries = 2
    timeout_ms = 2000
    backoff_base_s = 0.2
    backoff_max_s = 2.0
    # Off unless a test turns it on: many tests fail a trigger's webhook more than 10 times on
    # purpose, and expect every attempt to be made.
    circuit_failures = 0

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Created as Mission Control, the API and the import create triggers: through the
        triggers-changed service, so database capture follows."""
        with triggers_changing():
            return super()._create(model_class, *args, **kwargs)


class EventTypeFactory(factory.django.DjangoModelFactory):
    """A custom event type anyone may queue."""

    class Meta:
        model = EventType

    name = factory.Sequence(lambda n: f"type_{n}")
    queue_rule = EventType.QueueRule.ALLOW


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"customer {n}")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    status = "new"
    total = "12.50"
