"""Mission Control in a real headless Chromium, against a live server and a real Celery worker.

Like Django's own admin Selenium tests (StaticLiveServerTestCase); the worker is the session's
`celery_worker` fixture, which uses the same test database as the live server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.core.cache import cache
from django.utils import timezone

from eventing.models import EventLog, EventStatus, InvocationLog
from mission_control import actions
from tests.factories import EventTypeFactory, TriggerFactory
from tests.processes import ROOT
from tests.receiver import Receiver
from tests.support.mission_control import make_event
from tests.testapp.models import Customer, Order
from tests.waiting import wait_until
from triggers.models import Trigger

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The widths the pages must fit without sideways scrolling: a laptop and a desktop screen.
WIDTHS = (1280, 1920)
WINDOW_HEIGHT = 1000

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1100",
)

if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
    if os.environ.get("EVENTING_REQUIRE_SERVICES") == "1":
        raise RuntimeError("chromium and chromium-driver are required for the browser tests")
    pytest.skip("chromium / chromedriver not installed", allow_module_level=True)


def start_chromium():
    """Headless Chromium through the system chromedriver (never downloads a driver)."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    return driver


def replaced(element) -> bool:
    """Whether `element` left the document (selenium's staleness_of, which misses Chromium's
    other answer for a node of a replaced page: "does not belong to the document", seen in CI)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


class BrowserTestCase(StaticLiveServerTestCase):
    """A live server and one headless Chromium for the class; screenshots in SCREENSHOTS."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.selenium = start_chromium()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.selenium.quit()
        super().tearDownClass()

    @pytest.fixture(autouse=True)
    def _services(self, celery_worker):
        """The session's Celery worker and a fresh webhook receiver for each test."""
        if celery_worker.proc.poll() is not None:
            pytest.fail(f"The Celery worker died:\n{celery_worker.tail()}")
        self.worker = celery_worker
        self.receiver = Receiver()
        cache.clear()
        yield
        self.receiver.close()

    def url(self, path: str) -> str:
        return f"{self.live_server_url}/mission-control/{path}"

    def find(self, css: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.selenium, 15).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def finds(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.selenium.find_elements(By.CSS_SELECTOR, css)

    def select(self, element_id: str, text: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(f"#{element_id}")).select_by_visible_text(text)

    def submit(self, css: str) -> None:
        """Click a submit button and wait until the next page replaced this one."""
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.find("html")
        self.find(css).click()
        WebDriverWait(self.selenium, 30).until(lambda driver: replaced(page))

    def select_value(self, css: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(css)).select_by_value(value)

    def fill(self, element_id: str, text: str) -> None:
        element = self.find(f"#{element_id}")
        element.clear()
        element.send_keys(text)

    def login(self) -> None:
        User.objects.create_superuser("operator", "op@example.com", "pw-operator-1")
        self.selenium.get(self.url("login/"))
        self.fill("id_username", "operator")
        self.fill("id_password", "pw-operator-1")
        self.submit("input[type=submit]")
        self.find("#mc-dashboard")


class MissionControlBrowserTests(BrowserTestCase):
    """Operator journeys: create a trigger, watch events, redeliver, queue, read the dashboard."""

    # Helpers

    def page_text(self) -> str:
        return self.find("body").text

    def dashboard_number(self, status: str) -> int:
        self.selenium.get(self.url(""))
        text = self.find(f"#mc-count-{status} .mc-number").text
        return int(text.replace(",", ""))

    def screenshot(self, name: str, full_page: bool = False) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        self.selenium.execute_script("window.scrollTo(0, 0)")
        if full_page:
            height = self.selenium.execute_script("return document.body.scrollHeight")
            self.selenium.set_window_size(1400, max(1100, min(height + 50, 4000)))
        self.selenium.save_screenshot(str(path))
        if full_page:
            self.selenium.set_window_size(1400, 1100)
        assert path.stat().st_size > 1000
        return path

    def overflow(self, css: str) -> list[str]:
        """Elements matching `css` whose content is wider than their box (they scroll sideways)."""
        return self.selenium.execute_script(
            """
            return Array.from(document.querySelectorAll(arguments[0]))
              .filter(e => e.scrollWidth > e.clientWidth)
              .map(e => `${e.tagName}#${e.id}.${e.className}: ${e.scrollWidth} > ${e.clientWidth}`);
            """,
            css,
        )

    def assert_fits(self, name: str) -> None:
        """No sideways scroll: not the page, not a list's results box, not a dashboard table."""
        assert self.overflow("html") == [], name
        # Django's #changelist-form sticks out by its own margins; the .results box is what
        # scrolled the list's last columns out of sight.
        assert self.overflow(".results, .mc-dashboard table") == [], name

    def open_event(self, event: EventLog) -> None:
        self.selenium.get(self.url(f"eventing/eventlog/{event.pk}/change/"))
        self.find(".field-status_badge")

    def status_on_page(self, event: EventLog) -> str:
        self.open_event(event)
        return self.find(".field-status_badge .mc-status").text.lower()

    # Journeys

    def test_db_trigger_event_failure_and_redelivery(self):
        self.login()
        processed_before = self.dashboard_number("processed")
        failed_before = self.dashboard_number("failed")

        # Create a DB trigger through the form; it adapts to the chosen type.
        self.selenium.get(self.url("triggers/trigger/add/"))
        self.fill("id_name", "orders_created")
        self.select("id_kind", "DB_INSERT — a row is inserted")
        assert self.find(".field-source_model").is_displayed()
        assert not self.find(".field-custom_type").is_displayed()
        assert not self.find(".field-watch_fields").is_displayed()
        self.select("id_source_model", "testapp.Order")
        self.fill("id_url", self.receiver.url("/ok/orders"))
        self.fill("id_headers", '[{"name": "X-Api-Key", "value": "k-123"}]')
        self.fill("id_retries", "0")
        self.screenshot("trigger-form", full_page=True)
        self.submit("input[name=_continue]")
        self.find(".messagelist .success")
        trigger = Trigger.objects.get(name="orders_created")
        assert (trigger.type, trigger.source) == ("DB_INSERT", "testapp.Order")
        assert "k-123" not in self.find("#id_headers").get_attribute("value")
        assert trigger.signing_secret in self.page_text()

        # Save a row: its event reaches processed, with its invocation on the event page.
        Order.objects.create(status="new", total="9.99")
        self.receiver.wait_for("/ok/orders")
        event = wait_until(
            lambda: EventLog.objects.filter(trigger=trigger, status=EventStatus.PROCESSED).first(),
            message="the order's event processed",
        )
        self.selenium.get(self.url("eventing/eventlog/"))
        self.find(f"a[href*='{event.pk}']").click()
        self.find(".field-payload_pretty")
        assert self.find(".field-status_badge .mc-status").text.lower() == "processed"
        invocation = self.find("#mc-invocation-1")
        assert "HTTP 200" in invocation.text
        assert "[redacted]" in invocation.text  # X-Api-Key and the token
        assert "k-123" not in invocation.text
        self.screenshot("event-detail", full_page=True)

        # A receiver that fails: a second trigger (new, so no process has it cached) on
        # customers answers 500 and its event fails; then the receiver is mended.
        flaky = TriggerFactory(
            name="customers_created",
            type="DB_INSERT",
            source="testapp.Customer",
            retries=0,
            url=self.receiver.url("/status/500"),
        )
        Customer.objects.create(name="Ada")
        failed = wait_until(
            lambda: EventLog.objects.filter(trigger=flaky, status=EventStatus.FAILED).first(),
            message="the customer's event failed",
        )
        # Mended before the checks below, which outlast the workers' trigger cache TTL.
        flaky.url = self.receiver.url("/ok/again")
        flaky.save()
        assert self.status_on_page(failed) == "failed"
        assert "HTTP 500" in self.find("#mc-invocation-1").text

        # Redeliver it from the change list action.
        self.selenium.get(self.url("eventing/eventlog/?status__exact=failed"))
        self.find(f"input[name=_selected_action][value='{failed.pk}']").click()
        self.select_value("select[name=action]", "redeliver")
        self.submit("button[name=index]")
        assert "1 event redelivered." in self.find(".messagelist").text
        self.receiver.wait_for("/ok/again")
        assert wait_until(lambda: self.status_on_page(failed) == "processed", timeout_s=20)
        assert "HTTP 200" in self.find("#mc-invocation-2").text

        # The dashboard counted all of it.
        assert self.dashboard_number("processed") == processed_before + 2
        assert self.dashboard_number("failed") == failed_before
        health = self.find("#mc-health").text
        assert "reachable" in health
        # The session's worker writes its heartbeat, whatever the broker.
        workers = self.find("#mc-health-workers").text
        assert re.match(r"[1-9]\d* alive \(", workers), workers
        self.screenshot("dashboard", full_page=True)

    def test_queue_custom_event_from_the_queue_page(self):
        self.login()
        EventTypeFactory(
            name="invoice_paid",
            schema={
                "type": "object",
                "required": ["invoice"],
                "properties": {"invoice": {"type": "integer"}},
            },
        )
        TriggerFactory(name="invoices", type="invoice_paid", url=self.receiver.url("/reply/x"))
        self.receiver.replies["/reply/x"] = {"accepted": True}
        self.selenium.get(self.url(""))
        self.find("#mc-queue-link").click()

        # A payload against the schema: the error shows inline, nothing is recorded.
        self.select("id_type", "invoice_paid")
        self.fill("id_payload", '{"invoice": "seven"}')
        self.submit("#mc-queue-submit")
        assert (
            "payload.invoice: 'seven' is not of type 'integer'"
            in self.find(".field-payload .errorlist").text
        )
        assert not EventLog.objects.exists()

        # Synchronous: the webhook's reply is shown.
        self.fill("id_payload", '{"invoice": 7}')
        self.find("#id_synchronous").click()
        self.submit("#mc-queue-submit")
        results = self.find("#mc-queue-results")
        assert "processed" in results.text
        assert '"accepted": true' in self.find(".mc-reply").text
        [got] = self.receiver.on("/reply/x")
        assert got.json()["data"] == {"invoice": 7}

        # Asynchronous: the event id is shown and the worker delivers it.
        self.fill("id_payload", '{"invoice": 8}')
        self.find("#id_synchronous").click()
        self.submit("#mc-queue-submit")
        event_id = self.find("#mc-queue-results .mc-event-id").text
        event = EventLog.objects.get(id=event_id)
        assert event.payload == {"invoice": 8}
        self.receiver.wait_for("/reply/x", count=2)
        wait_until(
            lambda: EventLog.objects.get(id=event_id).status == EventStatus.PROCESSED,
            message="queued event processed",
        )

    def test_pages_fit_laptop_and_desktop_widths(self):
        seed_a_busy_day(self.receiver.url("/ok"))
        redelivered = EventLog.objects.get(idempotency_key="redelivered")
        self.login()
        pages = {
            "dashboard": ("", "#mc-dashboard"),
            "event-list": ("eventing/eventlog/", "#result_list"),
            "trigger-list": ("triggers/trigger/", "#result_list"),
            "event-page": (f"eventing/eventlog/{redelivered.pk}/change/", "#mc-invocation-2"),
        }
        for width in WIDTHS:
            self.selenium.set_window_size(width, WINDOW_HEIGHT)
            for name, (path, ready) in pages.items():
                self.selenium.get(self.url(path))
                self.find(ready)
                self.assert_fits(f"{name} at {width} px")
                self.screenshot(f"{name}-{width}")
            # The dashboard's table headers each keep to one line (they wrapped letter by letter).
            self.selenium.get(self.url(""))
            lines = self.selenium.execute_script(
                """
                return Array.from(document.querySelectorAll('#mc-failing th')).map(th => {
                  const range = document.createRange();
                  range.selectNodeContents(th);
                  return [th.textContent, new Set(Array.from(range.getClientRects())
                    .map(r => Math.round(r.top))).size];
                });
                """
            )
            assert lines == [["trigger", 1], ["failed", 1]], lines
        self.selenium.set_window_size(1400, 1100)


LONG_URL = "https://hooks.payments.example.com:8443/v1/tenants/acme-production/webhooks/orders"


def seed_a_busy_day(ok_url: str) -> None:
    """Triggers with long names and URLs, a day of events in every state, and an event that
    failed and was redelivered: what an operator's screens look like after a while."""
    triggers = [
        TriggerFactory(name="orders_created", type="DB_INSERT", source="testapp.Order", url=ok_url),
        TriggerFactory(
            name="customer_invoice_reminders_nightly_batch",
            type="invoice_reminder",
            url=f"{LONG_URL}/invoices/reminders?format=cloudevents&version=2026-11",
        ),
        TriggerFactory(
            name="warehouse_stock_levels_changed",
            type="DB_UPDATE",
            source="testapp.Order",
            url="https://{{HOOK_WAREHOUSE_HOST}}/api/v2/stock-level-notifications/receive",
        ),
        TriggerFactory(
            name="avatars_uploaded",
            type="FILE_CREATE",
            source="default",
            url=f"{LONG_URL}/media",
            paused=True,
            paused_reason="The receiver answered 410 Gone: paused until an operator resumes it",
        ),
    ]
    statuses = [EventStatus.PROCESSED] * 6 + [EventStatus.FAILED, EventStatus.STAGED]
    for n in range(40):
        trigger = triggers[n % len(triggers)]
        make_event(
            trigger,
            statuses[n % len(statuses)],
            created_ago_s=60 + 170 * n,
            last_status_code=200 if statuses[n % len(statuses)] == EventStatus.PROCESSED else 503,
            remark="" if n % 8 else "HTTP 503 from the receiver: Service Unavailable",
        )
    event = make_event(
        triggers[0], EventStatus.FAILED, created_ago_s=30, idempotency_key="redelivered"
    )
    add_invocation(event, attempt=1, status_code=500, ago_s=29)
    actions.redeliver([event.pk])
    add_invocation(event, attempt=1, status_code=200, ago_s=5)
    EventLog.objects.filter(pk=event.pk).update(
        status=EventStatus.PROCESSED, attempts=1, processed_at=timezone.now()
    )


def add_invocation(event: EventLog, *, attempt: int, status_code: int, ago_s: float) -> None:
    """An invocation row as a worker writes it."""
    InvocationLog.objects.create(
        event=event,
        attempt=attempt,
        invoked_at=timezone.now() - dt.timedelta(seconds=ago_s),
        duration_ms=42,
        request={
            "url": event.trigger.url,
            "headers": {"Content-Type": "application/json", "X-SC-Token": "[redacted]"},
            "body": json.dumps({"id": str(event.pk), "data": event.payload}),
        },
        response_status_code=status_code,
        response_headers={"Content-Type": "application/json"},
        response_body='{"ok": true}' if status_code == 200 else '{"error": "database busy"}',
        error_msg="" if status_code == 200 else f"HTTP {status_code}",
        succeeded=status_code == 200,
    )
