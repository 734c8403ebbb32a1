"""The owners' portal in a real headless Chromium, against a live server and a real Celery
worker: create an endpoint, send a test, see the delivery, redeliver, rotate the secret.

Screenshots go to test-artifacts/screenshots/ (`make screenshots` copies them to docs/).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from standardwebhooks.webhooks import Webhook

from eventing import portal_url
from eventing.models import EventLog, EventStatus, PublicEventType, Subscription
from tests.e2e.mission_control.test_browser import SCREENSHOTS, BrowserTestCase
from tests.waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@override_settings(ROOT_URLCONF="tests.support.portal_host_urls")
class PortalBrowserTests(BrowserTestCase):
    """An owner's journey through its portal, entered by a link from eventing.portal_url()."""

    def screenshot(self, name: str) -> None:
        path = SCREENSHOTS / f"{name}.png"
        self.selenium.execute_script("window.scrollTo(0, 0)")
        self.selenium.save_screenshot(str(path))
        assert path.stat().st_size > 1000

    def open_delivery(self, event: EventLog, status: str) -> None:
        """Reload the delivery's page until it shows `status`."""
        url = (
            f"{self.live_server_url}/portal/endpoints/{self.subscription.pk}/deliveries/{event.pk}/"
        )

        def shows() -> bool:
            self.selenium.get(url)
            return self.find("#portal-delivery-status").text == status

        wait_until(shows, message=f"the delivery page shows {status}")

    def test_create_test_see_redeliver_rotate(self):
        PublicEventType.objects.create(
            name="invoice_paid",
            description="An invoice was paid.",
            example={"invoice": 7, "amount": "12.50", "currency": "EUR"},
            schema={"type": "object", "required": ["invoice", "amount"]},
        )
        PublicEventType.objects.create(name="invoice_voided", description="An invoice was voided.")
        owner = get_user_model().objects.create_user("acme")

        # The host made a link; the browser opens it and lands on its endpoints.
        self.selenium.get(portal_url(owner, base_url=self.live_server_url))
        self.find("#portal-add")
        assert self.find("#portal-owner").text == "acme"
        assert "/enter/" not in self.selenium.current_url

        # Create an endpoint: the secret is shown once.
        self.find("#portal-add").click()
        self.fill("id_url", self.receiver.url("/hooks/acme"))
        self.find("#id_types_0").click()
        self.fill("id_description", "Billing sync")
        self.screenshot("portal-new")
        self.submit("#portal-save")
        secret = self.find("#portal-secret").text
        self.subscription = Subscription.objects.select_related("trigger").get()
        assert secret == self.subscription.trigger.signing_secret
        assert self.subscription.types == ["invoice_paid"]
        self.screenshot("portal-created")

        # Send a test: the delivery's page shows it processed, its body and its attempt.
        self.submit("a.button")  # Done: to the endpoint's page
        self.submit("#portal-test-button")
        assert "Test event delivered." in self.find("#portal-notice").text
        assert self.find("#portal-delivery-status").text == "processed"
        assert '"amount": "12.50"' in self.find("#portal-body").text
        assert len(self.finds(".portal-attempt")) == 1
        [first] = self.receiver.wait_for("/hooks/acme")
        assert Webhook(secret).verify(first.body, first.headers)["data"]["invoice"] == 7
        event = EventLog.objects.get(trigger_id=self.subscription.trigger_id)
        self.screenshot("portal-delivery")

        # Redeliver: the worker sends it again; the page then lists both attempts.
        self.submit("#portal-redeliver-button")
        assert "queued again" in self.find("#portal-notice").text
        self.receiver.wait_for("/hooks/acme", count=2)
        self.open_delivery(event, EventStatus.PROCESSED)
        assert len(self.finds(".portal-attempt")) == 2
        self.screenshot("portal-redelivered")

        # Rotate the secret, confirming first: the page gives the new one and the grace period.
        self.find("#portal-delivery a").click()
        self.find("#portal-rotate").click()
        self.find("#id_confirm").click()
        self.submit("#portal-confirm-button")
        new_secret = self.find("#portal-secret").text
        assert new_secret != secret
        assert "Until" in self.find("#portal-grace").text
        self.screenshot("portal-rotated")

        # Within the grace period a delivery verifies with the old secret and the new one.
        self.submit("a.button")
        self.submit("#portal-test-button")
        third = self.receiver.wait_for("/hooks/acme", count=3)[-1]
        for key in (secret, new_secret):
            assert Webhook(key).verify(third.body, third.headers)["type"] == "invoice_paid"
        self.selenium.get(f"{self.live_server_url}/portal/endpoints/")
        self.find("#portal-subscriptions")
        self.screenshot("portal-endpoints")

    def framed(self, page_origin: str, src: str) -> str:
        """Open the host's page on `page_origin` framing `src`; the URL the frame ended on."""
        self.selenium.get(f"{page_origin}/host-page/?src={quote(src)}")
        self.find("#host")
        self.selenium.switch_to.frame(self.find("#portal"))
        try:
            # The frame has loaded: the portal's page, or the browser's page for a refusal.
            wait_until(
                lambda: self.selenium.execute_script(
                    "return document.readyState == 'complete' && document.URL != 'about:blank'"
                ),
                message="the framed page loaded",
            )
            return self.selenium.execute_script("return document.URL")
        finally:
            self.selenium.switch_to.default_content()

    def in_frame(self, css: str) -> list:
        """The elements matching `css` in the host page's frame."""
        self.selenium.switch_to.frame(self.find("#portal"))
        try:
            return [element.text for element in self.finds(css)]
        finally:
            self.selenium.switch_to.default_content()

    def test_the_host_site_frames_the_portal_and_other_sites_cannot(self):
        owner = get_user_model().objects.create_user("acme")
        # The host's own origin (the default PORTAL_FRAME_ANCESTORS, 'self'): the link opens
        # the owner's portal inside the frame.
        link = portal_url(owner, base_url=self.live_server_url)
        landed = self.framed(self.live_server_url, link)
        assert landed == f"{self.live_server_url}/portal/endpoints/"
        assert self.in_frame("#portal-owner") == ["acme"]
        self.screenshot("portal-embedded")

        # Another origin (127.0.0.1 instead of localhost) may not frame a portal page: the
        # browser shows its own error page in the frame instead.
        parts = urlsplit(self.live_server_url)
        other = f"{parts.scheme}://127.0.0.1:{parts.port}"
        assert other != self.live_server_url
        portal_page = f"{self.live_server_url}/portal/enter/not-a-link/"
        landed = self.framed(other, portal_page)
        assert not landed.startswith(self.live_server_url), landed
        assert self.in_frame("#portal-refused") == []

        # Unless the host lists that origin in PORTAL_FRAME_ANCESTORS.
        eventing = {**settings.EVENTING, "PORTAL_FRAME_ANCESTORS": ["'self'", other]}
        with override_settings(EVENTING=eventing):
            assert self.framed(other, portal_page) == portal_page
            assert "not valid" in self.in_frame("#portal-refused")[0]
