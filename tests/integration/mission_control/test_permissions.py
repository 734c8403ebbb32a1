"""Who may see and do what: view to see, change (or the operators' rights) to act."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse

from eventing.models import EventLog, EventStatus
from mission_control import counting
from tests.factories import TriggerFactory
from tests.support.mission_control import make_event
from triggers.models import Trigger

pytestmark = pytest.mark.django_db
EVENTS = "mission_control:eventing_eventlog_changelist"
TRIGGERS = "mission_control:triggers_trigger_changelist"


def staff(*codenames: str, groups: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_operators_group_is_created_by_the_migration():
    group = Group.objects.get(name="Eventing operators")
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert {"view_eventlog", "view_trigger", "redeliver_eventlog", "cancel_eventlog"} <= codenames
    assert not codenames & {"change_trigger", "change_eventlog", "delete_eventlog"}


def test_operator_redelivers_and_cancels_but_cannot_change_triggers(client):
    trigger = TriggerFactory()
    failed = make_event(trigger, EventStatus.FAILED)
    staged = make_event(trigger, EventStatus.STAGED)
    client.force_login(staff(groups=("Eventing operators",)))

    page = client.get(reverse(EVENTS))
    assert page.status_code == 200
    assert 'value="redeliver"' in page.content.decode()
    response = client.post(
        reverse(EVENTS),
        {"action": "redeliver", "_selected_action": [failed.pk, staged.pk]},
        follow=True,
    )
    assert "1 event redelivered. 1 skipped" in " ".join(messages_of(response))
    assert EventLog.objects.get(pk=failed.pk).status == EventStatus.STAGED
    client.post(reverse(EVENTS), {"action": "cancel", "_selected_action": [staged.pk]})
    assert EventLog.objects.get(pk=staged.pk).status == EventStatus.CANCELLED

    triggers = client.get(reverse(TRIGGERS))
    assert triggers.status_code == 200
    assert 'value="disable"' not in triggers.content.decode()
    client.post(reverse(TRIGGERS), {"action": "disable", "_selected_action": [trigger.pk]})
    assert Trigger.objects.get(pk=trigger.pk).enabled
    operate = reverse("mission_control:triggers_trigger_operate", args=[trigger.pk, "pause"])
    assert client.post(operate).status_code == 403


def test_viewer_sees_but_cannot_act(client):
    trigger = TriggerFactory()
    failed = make_event(trigger, EventStatus.FAILED)
    client.force_login(staff("view_eventlog", "view_trigger"))
    page = client.get(reverse(EVENTS))
    assert page.status_code == 200
    assert 'value="redeliver"' not in page.content.decode()
    client.post(reverse(EVENTS), {"action": "redeliver", "_selected_action": [failed.pk]})
    assert EventLog.objects.get(pk=failed.pk).status == EventStatus.FAILED
    operate = reverse("mission_control:eventing_eventlog_operate", args=[failed.pk, "redeliver"])
    assert client.post(operate).status_code == 403
    assert client.get(reverse("mission_control:queue_event")).status_code == 403
    assert (
        client.get(reverse("mission_control:eventing_eventlog_redeliver_failed")).status_code == 403
    )


def test_staff_without_view_permission_sees_no_dashboard(client):
    client.force_login(staff())
    page = client.get(reverse("mission_control:index"))
    assert page.status_code == 200
    assert 'id="mc-dashboard"' not in page.content.decode()
    assert client.get(reverse(EVENTS)).status_code == 403


def test_event_rows_are_read_only(admin_client):
    event = make_event(TriggerFactory(), EventStatus.FAILED)
    change = reverse("mission_control:eventing_eventlog_change", args=[event.pk])
    page = admin_client.get(change)
    assert 'name="_save"' not in page.content.decode()
    admin_client.post(change, {"status": "processed"})
    assert EventLog.objects.get(pk=event.pk).status == EventStatus.FAILED
    delete = reverse("mission_control:eventing_eventlog_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert EventLog.objects.filter(pk=event.pk).exists()


def test_trigger_action_reports_counts(admin_client):
    a, b = TriggerFactory(), TriggerFactory(enabled=False)
    response = admin_client.post(
        reverse(TRIGGERS), {"action": "disable", "_selected_action": [a.pk, b.pk]}, follow=True
    )
    assert "1 trigger disabled." in messages_of(response)


def test_detail_page_buttons(admin_client):
    event = make_event(TriggerFactory(), EventStatus.FAILED)
    change = reverse("mission_control:eventing_eventlog_change", args=[event.pk])
    assert 'id="mc-redeliver"' in admin_client.get(change).content.decode()
    operate = reverse("mission_control:eventing_eventlog_operate", args=[event.pk, "redeliver"])
    response = admin_client.post(operate, follow=True)
    assert "Event redelivered." in messages_of(response)
    response = admin_client.post(operate, follow=True)
    assert "Event not redelivered: it is staged" in " ".join(messages_of(response))


def test_redeliver_failed_page(admin_client):
    trigger = TriggerFactory()
    make_event(trigger, EventStatus.FAILED)
    make_event(trigger, EventStatus.FAILED)
    url = reverse("mission_control:eventing_eventlog_redeliver_failed")
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(
        url, {"trigger": trigger.pk, "since": "2000-01-01T00:00"}, follow=True
    )
    assert f"2 failed events of {trigger.name} redelivered." in messages_of(response)
    assert not EventLog.objects.filter(status=EventStatus.FAILED).exists()


def test_search_by_id_batch_and_key(admin_client):
    trigger = TriggerFactory()
    one = make_event(trigger, idempotency_key="order-42")
    two = make_event(trigger, batch_id=one.batch_id)
    other = make_event(trigger)

    def page(q: str) -> str:
        return admin_client.get(reverse(EVENTS), {"q": q}).content.decode()

    assert str(one.id)[:8] in page(str(one.id))
    assert str(other.id)[:8] not in page(str(one.id))
    by_batch = page(str(one.batch_id))
    assert str(one.id)[:8] in by_batch
    assert str(two.id)[:8] in by_batch
    assert str(one.id)[:8] in page("order-42")
    assert str(other.id)[:8] not in page("no-such-key")


def test_estimated_count_on_postgresql(monkeypatch):
    trigger = TriggerFactory()
    for _ in range(30):
        make_event(trigger)
    queryset = EventLog.objects.all()
    if connection.vendor != "postgresql":
        assert counting.estimated_count(queryset) == 30
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE event_logs")
    monkeypatch.setattr(counting, "EXACT_BELOW", 0)
    assert counting.table_estimate(queryset) == 30
    assert counting.estimated_count(queryset.filter(status="processed")) > 0
    monkeypatch.setattr(counting, "EXACT_BELOW", 10_000)
    assert counting.estimated_count(queryset.filter(status="failed")) == 0


def test_viewer_sees_a_trigger_read_only(client):
    trigger = TriggerFactory(
        type="DB_UPDATE",
        source="testapp.Order",
        watch_fields=["status"],
        headers=[{"name": "X-Key", "value": "s3cret"}],
    )
    client.force_login(staff(groups=("Eventing operators",)))
    page = client.get(reverse("mission_control:triggers_trigger_change", args=[trigger.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "DB_UPDATE" in body
    assert "testapp.Order" in body
    assert "s3cret" not in body
    assert 'name="_save"' not in body
    assert 'id="mc-send-test"' not in body


@pytest.mark.parametrize(
    "viewer",
    [
        pytest.param(lambda: staff(groups=("Eventing operators",)), id="operators group"),
        pytest.param(lambda: staff("view_trigger"), id="view_trigger only"),
    ],
)
def test_viewers_see_credentials_masked_on_the_trigger_page(client, viewer):
    trigger = TriggerFactory(
        headers=[
            {"name": "Authorization", "value": "Bearer viewer-must-not-see-9d2f"},
            {"name": "X-Tenant", "value": "tenant-hidden-41"},
        ]
    )
    page = reverse("mission_control:triggers_trigger_change", args=[trigger.pk])
    client.force_login(viewer())
    body = client.get(page).content.decode()
    assert "viewer-must-not-see-9d2f" not in body
    assert "tenant-hidden-41" not in body
    assert trigger.signing_secret.removeprefix("whsec_") not in body
    assert "********" in body
    assert "Authorization" in body  # the page is there, only the values are hidden

    # Who may change the trigger sees (and can rotate) the secret, as before.
    client.force_login(staff("view_trigger", "change_trigger"))
    assert trigger.signing_secret in client.get(page).content.decode()
