"""The transform preview and the backfill dialog in a real headless Chromium, against a live
server and the session's real Celery worker (screenshots in test-artifacts/screenshots/)."""

from __future__ import annotations

import json

import pytest

from eventing.models import EventLog, EventStatus
from tests.e2e.mission_control.test_browser import SCREENSHOTS, BrowserTestCase
from tests.factories import TriggerFactory
from tests.testapp.models import Order
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class TransformAndBackfillBrowserTests(BrowserTestCase):
    """An operator edits a transform and watches the preview; backfills rows with progress."""

    def wait_text(self, css: str, text: str, timeout_s: float = 30) -> str:
        """The element's text once it contains `text`."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.selenium, timeout_s).until(lambda d: text in self.find(css).text)
        return self.find(css).text

    def screenshot(self, name: str, css: str) -> None:
        self.selenium.execute_script(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", css
        )
        path = SCREENSHOTS / f"{name}.png"
        self.selenium.save_screenshot(str(path))
        assert path.stat().st_size > 1000

    def test_transform_preview_follows_the_edits_and_shows_errors(self):
        trigger = TriggerFactory(
            name="orders_shaped", type="DB_INSERT", source="testapp.Order", url="http://h.test/"
        )
        Order.objects.create(status="paid", total="4.20")  # the latest event to preview over
        self.login()
        self.selenium.get(self.url(f"triggers/trigger/{trigger.pk}/change/"))

        self.fill("id_transform_url", "{{ base_url }}orders/{{ data.new.id }}")
        self.fill("id_transform_body", '{"status": {{ data.new.status | tojson }}}')
        shown = self.wait_text("#mc-preview-request", '{"status": "paid"}')
        order = Order.objects.get()
        assert shown.startswith(f"POST http://h.test/orders/{order.pk}")
        assert "latest event" in self.find("#mc-preview-source").text
        self.screenshot("transform-preview", "#mc-preview")

        self.fill("id_transform_body", '{"status": {{ data.new.nope }}}')
        error = self.wait_text("#mc-preview-error", "Request transform failed")
        assert "nope" in error
        self.fill("id_transform_body", '{"status": {{ data.new.status }')
        assert "transform_body: line 1" in self.wait_text("#mc-preview-error", "transform_body")
        self.screenshot("transform-preview-error", "#mc-preview")
        # Previewing saves nothing: the stored trigger has no transform until the form is saved.
        trigger.refresh_from_db()
        assert (trigger.transform_url, trigger.transform_body) == ("", "")

    def test_backfill_dialog_counts_then_sends_with_progress(self):
        TriggerFactory(
            name="orders_backfill",
            type="DB_UPDATE",
            source="testapp.Order",
            url=self.receiver.url("/ok/backfill"),
        )
        Order.objects.bulk_create(Order(status="paid" if i % 3 else "new") for i in range(30))
        paid = Order.objects.filter(status="paid").count()
        self.login()
        self.selenium.get(self.url("backfill/?model=testapp.Order"))

        self.fill("mc-backfill-filters", "status=paid")
        self.fill("mc-backfill-batch", "4")
        self.find("#mc-backfill-count").click()
        self.wait_text("#mc-backfill-counted", f"{paid} rows match")
        assert self.find("#mc-backfill-start").text == f"Send {paid} rows"
        self.find("#mc-backfill-start").click()
        status = self.wait_text("#mc-backfill-status", "Done.")
        assert status.startswith(f"{paid} of {paid} rows: {paid} sent")
        progress = self.find("#mc-backfill-progress")
        assert progress.get_attribute("value") == str(paid)
        self.screenshot("backfill-dialog", "#mc-backfill")

        got = self.receiver.wait_for("/ok/backfill", count=paid)
        bodies = [json.loads(r.body) for r in got]
        assert {b["type"] for b in bodies} == {"MANUAL"}
        assert {b["data"]["new"]["status"] for b in bodies} == {"paid"}
        wait_until(
            lambda: (
                EventLog.objects.filter(type="MANUAL", status=EventStatus.PROCESSED).count() == paid
            ),
            message="every MANUAL event processed",
        )
