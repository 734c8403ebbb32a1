"""The event timeline on a host model's change page in the host's own admin, in a real headless
Chromium against a live server and the session's Celery worker: a failed event about an order
is shown with its actor and last response, redelivered from the page, and reaches processed."""

from __future__ import annotations

import pytest
from django.test import override_settings

import eventing
from eventing.models import EventLog, EventStatus
from tests.e2e.mission_control.test_browser import SCREENSHOTS, BrowserTestCase
from tests.factories import TriggerFactory
from tests.testapp.models import Order
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@override_settings(ROOT_URLCONF="tests.testapp.urls")
class EventTimelineBrowserTests(BrowserTestCase):
    """Support staff answer "did the CRM get this order?" from the order's own page."""

    def order_page(self, order: Order) -> None:
        self.selenium.get(f"{self.live_server_url}/admin/testapp/order/{order.pk}/change/")
        self.find("#eventing-timeline")

    def row(self, event: EventLog):
        return self.find(f"#eventing-timeline tr[data-event='{event.pk}']")

    def test_a_failed_event_is_redelivered_from_the_order_page(self):
        self.login()
        trigger = TriggerFactory(
            name="crm_orders",
            type="DB_UPDATE",
            source="testapp.Order",
            retries=0,
            url=self.receiver.url("/status/500"),
        )
        order = Order.objects.create(status="new", total="12.50")
        order.status = "paid"
        with eventing.actor("checkout-job"):
            order.save()
        failed = wait_until(
            lambda: EventLog.objects.filter(trigger=trigger, status=EventStatus.FAILED).first(),
            message="the order's event failed",
        )
        trigger.url = self.receiver.url("/ok/crm")
        trigger.save()

        self.order_page(order)
        row = self.row(failed)
        assert row.get_attribute("data-status") == "failed"
        assert "crm_orders" in row.text
        assert "checkout-job" in row.text
        assert "500" in row.text
        link = row.find_element("css selector", "a[title='Open in Mission Control']")
        assert f"/mission-control/eventing/eventlog/{failed.pk}/change/" in link.get_attribute(
            "href"
        )
        self.selenium.save_screenshot(str(SCREENSHOTS / "host-order-timeline.png"))

        redeliver = f"tr[data-event='{failed.pk}'] .eventing-redeliver input[type=submit]"
        self.submit(redeliver)
        assert "will be delivered again" in self.find(".messagelist").text
        self.receiver.wait_for("/ok/crm")
        wait_until(
            lambda: EventLog.objects.get(pk=failed.pk).status == EventStatus.PROCESSED,
            message="the redelivered event processed",
        )
        self.order_page(order)
        row = self.row(failed)
        assert row.get_attribute("data-status") == "processed"
        assert "200" in row.text
        assert self.finds(redeliver)  # a processed event may be sent again too

        # Send the row to the trigger by hand: a MANUAL event joins the timeline.
        self.submit(".eventing-send input[type=submit]")
        assert "as a MANUAL event" in self.find(".messagelist").text
        manual = EventLog.objects.get(trigger=trigger, type="MANUAL")
        assert self.row(manual).get_attribute("data-event") == str(manual.pk)
        self.receiver.wait_for("/ok/crm", count=2)
