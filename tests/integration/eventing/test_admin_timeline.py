"""The event timeline on a host's own admin change page (eventing.admin.EventTimelineMixin): the
row's events and only them, a bounded number of queries whatever their count, redeliver and
"send this row to a trigger" for users with the permissions, refused for the others."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import TriggerFactory
from tests.support.mission_control import make_event
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def host_urls(settings):
    settings.ROOT_URLCONF = "tests.testapp.urls"


@pytest.fixture
def trigger(deliver_messages):
    return TriggerFactory(name="crm_orders", type="DB_UPDATE", source="testapp.Order")


def event_about(order: Order, trigger, status=EventStatus.FAILED, **fields) -> EventLog:
    """An event of `trigger` about `order`, with one attempt that got a 500."""
    payload = {"pk": order.pk, "model": "testapp.Order", "actor": "user:ann", "new": {}}
    fields.setdefault("last_status_code", 500)
    event = make_event(trigger, status, source="testapp.Order", payload=payload, **fields)
    InvocationLog.objects.create(
        event=event,
        attempt=1,
        invoked_at=timezone.now(),
        duration_ms=12,
        request={},
        response_status_code=500,
        response_body="upstream said no",
        error_msg="HTTP 500",
    )
    return event


def change_page(client, order: Order) -> str:
    response = client.get(f"/admin/testapp/order/{order.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def staff(*perms: str) -> User:
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def test_the_page_lists_the_row_s_events_only_with_actor_status_and_last_response(
    admin_client, trigger
):
    order, other = Order.objects.create(status="new"), Order.objects.create(status="new")
    mine = event_about(order, trigger)
    theirs = event_about(other, trigger)
    html = change_page(admin_client, order)
    assert 'id="eventing-timeline"' in html
    assert f'data-event="{mine.id}"' in html
    assert f'data-event="{theirs.id}"' not in html
    assert "crm_orders" in html
    assert "user:ann" in html
    assert "upstream said no" in html
    assert "<strong>500</strong>" in html
    # Links to Mission Control: the event's page and the list of this row's events.
    assert f"/mission-control/eventing/eventlog/{mine.id}/change/" in html
    assert f"/mission-control/eventing/eventlog/?payload__pk={order.pk}" in html
    assert 'class="eventing-redeliver"' in html
    assert 'class="eventing-send"' in html
    # The "all events" link is a filter Mission Control's list understands.
    listed = admin_client.get(f"/mission-control/eventing/eventlog/?payload__pk={order.pk}")
    assert listed.status_code == 200
    assert str(mine.id) in listed.content.decode()
    assert str(theirs.id) not in listed.content.decode()


def test_queries_do_not_grow_with_the_number_of_events(admin_client, trigger, settings):
    # The trigger index is reloaded by age on a request's start: not within this test.
    settings.EVENTING = {**settings.EVENTING, "TRIGGER_CACHE_TTL_S": 3600}
    order = Order.objects.create(status="new")
    event_about(order, trigger)
    admin_client.get(f"/admin/testapp/order/{order.pk}/change/")  # warm caches (permissions)
    with CaptureQueriesContext(connection) as one:
        html = change_page(admin_client, order)
    assert html.count('class="eventing-event"') == 1
    for _ in range(49):
        event_about(order, trigger)
    with CaptureQueriesContext(connection) as fifty:
        html = change_page(admin_client, order)
    assert html.count('class="eventing-event"') == 50
    assert len(fifty) == len(one), [q["sql"][:120] for q in fifty.captured_queries]
    event_queries = [q for q in fifty.captured_queries if '"event_logs"' in q["sql"]]
    assert len(event_queries) == 1  # the actor and last response are subqueries of it
    assert len(fifty) <= 7


def test_redeliver_stages_a_finished_event_again(admin_client, trigger):
    order = Order.objects.create(status="new")
    event = event_about(order, trigger)
    response = admin_client.post(
        f"/admin/testapp/order/{order.pk}/eventing/redeliver/", {"event": str(event.id)}
    )
    assert response.status_code == 302
    assert response["Location"].endswith(
        f"/admin/testapp/order/{order.pk}/change/#eventing-timeline"
    )
    event.refresh_from_db()
    assert event.status == EventStatus.STAGED
    assert event.attempts == 0
    assert InvocationLog.objects.filter(event=event).count() == 1  # the old attempt is kept


def test_redeliver_refuses_an_event_about_another_row_and_a_get(admin_client, trigger):
    order, other = Order.objects.create(status="new"), Order.objects.create(status="new")
    theirs = event_about(other, trigger)
    url = f"/admin/testapp/order/{order.pk}/eventing/redeliver/"
    assert admin_client.post(url, {"event": str(theirs.id)}).status_code == 404
    assert admin_client.post(url, {"event": "not-a-uuid"}).status_code == 404
    assert admin_client.get(url).status_code == 405
    theirs.refresh_from_db()
    assert theirs.status == EventStatus.FAILED


def test_send_this_row_records_a_manual_event_for_it(admin_client, trigger):
    order = Order.objects.create(status="paid")
    response = admin_client.post(
        f"/admin/testapp/order/{order.pk}/eventing/send/", {"trigger": str(trigger.pk)}
    )
    assert response.status_code == 302
    manual = EventLog.objects.get(type="MANUAL")
    assert (manual.trigger_id, manual.payload["pk"]) == (trigger.pk, order.pk)
    assert manual.payload["new"]["status"] == "paid"
    # A trigger of another model is refused, nothing sent.
    other = TriggerFactory(name="specimens", type="DB_UPDATE", source="testapp.Specimen")
    admin_client.post(f"/admin/testapp/order/{order.pk}/eventing/send/", {"trigger": other.pk})
    assert EventLog.objects.filter(type="MANUAL").count() == 1
    assert f'data-event="{manual.id}"' in change_page(admin_client, order)


def test_permissions_decide_what_shows_and_what_is_allowed(client, trigger):
    order = Order.objects.create(status="new")
    event = event_about(order, trigger)
    user = staff("testapp.view_order")
    client.force_login(user)
    # Without eventing.view_eventlog: no timeline at all.
    assert 'id="eventing-timeline"' not in change_page(client, order)

    user.user_permissions.add(Permission.objects.get(codename="view_eventlog"))
    user = User.objects.get(pk=user.pk)  # permissions are cached per user object
    client.force_login(user)
    html = change_page(client, order)
    assert f'data-event="{event.id}"' in html
    assert 'class="eventing-redeliver"' not in html
    assert 'class="eventing-send"' not in html
    redeliver = f"/admin/testapp/order/{order.pk}/eventing/redeliver/"
    assert client.post(redeliver, {"event": str(event.id)}).status_code == 403
    send = f"/admin/testapp/order/{order.pk}/eventing/send/"
    assert client.post(send, {"trigger": str(trigger.pk)}).status_code == 403
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    assert not EventLog.objects.filter(type="MANUAL").exists()
