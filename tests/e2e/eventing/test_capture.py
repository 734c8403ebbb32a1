"""DB capture by model signals: deletes in any process, the row as stored, sensitive fields."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading

import pytest
from django.contrib.auth.models import User
from django.db.models.signals import post_delete, pre_delete

from eventing.models import EventLog, InvocationLog
from tests.factories import TriggerFactory
from tests.processes import ROOT, process_env
from tests.testapp.models import Customer, Order, Untracked
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db


def payloads(event_type: str) -> list[dict]:
    return [e.payload for e in EventLog.objects.filter(type=event_type).order_by("created_at")]


# --- deletes: receivers in place before any query, the index consulted at delete time -----


def test_delete_receivers_are_connected_before_any_trigger_is_loaded():
    # No trigger exists and the index was never loaded: a delete must still reach Eventing.
    assert post_delete.has_listeners(Order)
    assert post_delete.has_listeners(User)
    assert post_delete.has_listeners(Untracked)


def test_eventing_tables_keep_fast_delete():
    # Retention deletes event rows in bulk; triggers never name Eventing's own models.
    for model in (EventLog, InvocationLog):
        assert not post_delete.has_listeners(model)
        assert not pre_delete.has_listeners(model)


def test_untracked_delete_records_nothing(message_per_event):
    TriggerFactory(type="DB_DELETE", source="testapp.Order")
    Untracked.objects.create().delete()
    Untracked.objects.create()
    Untracked.objects.all().delete()
    assert not EventLog.objects.exists()


def test_instance_delete_sends_the_stored_row_not_the_stale_instance(message_per_event):
    TriggerFactory(type="DB_DELETE", source="testapp.Order")
    order = Order.objects.create(status="paid", note="kept")
    pk = order.pk
    order.status = "edited in memory, never saved"
    order.delete()
    (data,) = payloads("DB_DELETE")
    assert data["pk"] == pk
    assert data["old"]["id"] == pk
    assert data["old"]["status"] == "paid"
    assert data["new"] is None


def test_deleting_a_row_already_gone_records_nothing(message_per_event):
    order = Order.objects.create()
    Order.objects.filter(pk=order.pk).delete()  # gone behind the instance's back
    TriggerFactory(type="DB_DELETE", source="testapp.Order")
    order.delete()
    assert not EventLog.objects.exists()


def test_cascade_and_queryset_deletes_send_each_row(message_per_event):
    TriggerFactory(type="DB_DELETE", source="testapp.Order")
    customer = Customer.objects.create(name="c")
    Order.objects.create(status="a", customer=customer)
    Order.objects.create(status="b", customer=customer)
    Order.objects.filter(customer=customer).delete()
    assert sorted(d["old"]["status"] for d in payloads("DB_DELETE")) == ["a", "b"]


# --- sensitive fields ----------------------------------------------------------------------


def user_events(payload_fields: list[str] | None = None) -> list[dict]:
    """Insert, update (password and name) and delete a user under DB_* triggers on auth.User."""
    for kind in ("DB_INSERT", "DB_UPDATE", "DB_DELETE"):
        TriggerFactory(type=kind, source="auth.User", payload_fields=payload_fields or [])
    user = User.objects.create_user("alice", password="first secret")
    user.set_password("second secret")
    user.first_name = "Alice"
    user.save()
    user.delete()
    return [*payloads("DB_INSERT"), *payloads("DB_UPDATE"), *payloads("DB_DELETE")]


def test_password_hash_is_left_out_by_default(message_per_event):
    inserted, updated, deleted = user_events()
    assert inserted["new"]["username"] == "alice"
    assert updated["changed"] == ["first_name"]
    assert deleted["old"]["username"] == "alice"
    for data in (inserted, updated, deleted):
        for row in (data["old"], data["new"]):
            assert row is None or "password" not in row
    stored = [str(e.payload) for e in EventLog.objects.all()]
    assert len(stored) == 3
    assert not any("md5$" in text or "secret" in text for text in stored)


def test_payload_fields_opt_the_password_back_in(message_per_event):
    inserted, updated, deleted = user_events(["username", "password"])
    assert inserted["new"]["password"].startswith("md5$")
    assert set(inserted["new"]) == {"username", "password"}
    assert updated["old"]["password"] != updated["new"]["password"]
    assert "password" in updated["changed"]
    assert deleted["old"]["password"] == updated["new"]["password"]


def test_exclude_fields_setting_is_matched_case_insensitively(message_per_event, settings):
    settings.EVENTING = {**settings.EVENTING, "EXCLUDE_FIELDS": ["NOTE"]}
    TriggerFactory(name="plain", type="DB_UPDATE", source="testapp.Order")
    TriggerFactory(
        name="opted_in", type="DB_UPDATE", source="testapp.Order", payload_fields=["note"]
    )
    order = Order.objects.create(note="api key 123")
    order.note = "api key 456"
    order.save()
    by_trigger = {e.trigger_name: e.payload for e in EventLog.objects.all()}
    assert "note" not in by_trigger["plain"]["old"]
    assert "note" not in by_trigger["plain"]["new"]
    assert by_trigger["plain"]["changed"] == []
    assert by_trigger["opted_in"]["new"] == {"note": "api key 456"}
    assert by_trigger["opted_in"]["changed"] == ["note"]


def test_user_password_is_left_out_even_without_exclude_fields(message_per_event, settings):
    settings.EVENTING = {**settings.EVENTING, "EXCLUDE_FIELDS": []}
    TriggerFactory(type="DB_INSERT", source="auth.User")
    User.objects.create_user("bob", password="pw")
    (data,) = payloads("DB_INSERT")
    assert data["new"]["username"] == "bob"
    assert "password" not in data["new"]


def test_filter_does_not_see_left_out_fields(message_per_event):
    TriggerFactory(type="DB_INSERT", source="auth.User", filter={"new.password": {"exists": True}})
    User.objects.create_user("carol", password="pw")
    assert not EventLog.objects.exists()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_webhook_body_holds_no_password_hash(worker, receiver):
    TriggerFactory(type="DB_INSERT", source="auth.User", url=receiver.url("/users"))
    TriggerFactory(
        type="DB_INSERT",
        source="auth.User",
        url=receiver.url("/users-with-hash"),
        payload_fields=["username", "password"],
    )
    user = User.objects.create_user("dora", password="pw")
    plain = receiver.wait_for("/users")[0]
    assert plain.json()["data"]["new"]["username"] == "dora"
    assert b"password" not in plain.body
    assert user.password.encode() not in plain.body
    opted_in = receiver.wait_for("/users-with-hash")[0].json()["data"]["new"]
    assert opted_in == {"username": "dora", "password": user.password}


# --- real processes: the first model operation is a delete; a process that only deletes ----


def shell(code: str) -> subprocess.CompletedProcess:
    """Run `manage.py shell -c code` in a fresh process against the test database."""
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


FIRST_OPERATION_IS_A_DELETE = {
    "instance": "from django.contrib.auth.models import User\n"
    "User.objects.get(username='alice').delete()",
    "queryset": "from django.contrib.auth.models import User\n"
    "User.objects.filter(username='alice').delete()",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", sorted(FIRST_OPERATION_IS_A_DELETE))
def test_delete_in_a_fresh_process_is_recorded(how):
    TriggerFactory(type="DB_DELETE", source="auth.User")
    user = User.objects.create_user("alice", password="pw")
    result = shell(FIRST_OPERATION_IS_A_DELETE[how])
    assert result.returncode == 0, result.stderr
    assert not User.objects.filter(pk=user.pk).exists()
    (event,) = EventLog.objects.filter(type="DB_DELETE")
    assert event.payload["pk"] == user.pk
    assert event.payload["old"]["username"] == "alice"
    assert "password" not in event.payload["old"]


DELETER = """
import sys
from tests.testapp.models import Order
print("ready", flush=True)
for line in sys.stdin:
    Order.objects.filter(pk=int(line)).delete()
    print("deleted", line.strip(), flush=True)
"""


class Deleter:
    """A long-running process that only ever deletes orders, one pk per line of its stdin."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", DELETER],
            cwd=ROOT,
            env=process_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("ready")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, wanted: str, timeout_s: float = 60.0) -> None:
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(f"no {wanted!r} from the deleter; it said {seen}") from None
            if line == wanted:
                return
            seen.append(line)

    def delete(self, pk: int) -> None:
        self.proc.stdin.write(f"{pk}\n")
        self.proc.stdin.flush()
        self.expect(f"deleted {pk}")

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


@pytest.mark.django_db(transaction=True)
def test_process_that_only_deletes_sees_a_trigger_created_later():
    deleter = Deleter()
    try:
        before = Order.objects.create(status="before")
        deleter.delete(before.pk)
        assert not EventLog.objects.exists()  # no trigger yet

        TriggerFactory(type="DB_DELETE", source="testapp.Order")

        def next_delete_is_recorded() -> bool:
            order = Order.objects.create(status="after")
            deleter.delete(order.pk)
            return EventLog.objects.filter(type="DB_DELETE", payload__pk=order.pk).exists()

        # Within the TTL (0.2 s in tests.settings); the deadline only bounds a failure.
        wait_until(next_delete_is_recorded, timeout_s=20, message="the DB_DELETE event")
        assert not EventLog.objects.filter(payload__pk=before.pk).exists()
    finally:
        deleter.stop()
