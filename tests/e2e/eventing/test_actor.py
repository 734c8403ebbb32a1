"""Who made the change: DB events carry `actor` from the request, a command or eventing.actor()."""

from __future__ import annotations

import asyncio
import os
import threading
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand

import eventing
from eventing.capture.actor import current_actor
from eventing.management import command_actor, execute_from_command_line
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.testapp.models import Customer, Order
from tests.waiting import wait_until


def data_of(event_type: str = "DB_INSERT") -> list[dict]:
    return [e.payload for e in EventLog.objects.filter(type=event_type).order_by("created_at")]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_an_admin_save_reaches_the_webhook_with_the_admin_user_as_actor(
    worker, receiver, admin_client, admin_user
):
    TriggerFactory(type="DB_INSERT", source="testapp.Customer", url=receiver.url("/hook"))

    reply = admin_client.post("/mission-control/testapp/customer/add/", {"name": "ada"})

    assert reply.status_code == 302, reply.content[:500]
    [request] = receiver.wait_for("/hook")
    data = request.json()["data"]
    assert data["actor"] == f"user:{admin_user.get_username()}"
    assert data["new"]["name"] == "ada"
    wait_until(
        lambda: EventLog.objects.filter(status="processed").count() == 1,
        message="the event processed",
    )


@pytest.mark.django_db
def test_actor_blocks_nest_and_restore_the_outer_actor():
    TriggerFactory(type="DB_INSERT", source="testapp.Customer")
    Customer.objects.create(name="nobody")
    with eventing.actor("billing-job"):
        Customer.objects.create(name="outer")
        with eventing.actor("refund-job"):
            Customer.objects.create(name="inner")
        Customer.objects.create(name="outer again")

    actors = {d["new"]["name"]: d.get("actor") for d in data_of()}
    assert actors == {
        "nobody": None,
        "outer": "billing-job",
        "inner": "refund-job",
        "outer again": "billing-job",
    }
    assert "actor" not in data_of()[0]  # unknown: the key is absent, the old shape kept


@pytest.mark.django_db
def test_a_trigger_that_leaves_the_actor_out_gets_none():
    TriggerFactory(name="with_actor", type="DB_INSERT", source="testapp.Customer")
    TriggerFactory(
        name="without_actor", type="DB_INSERT", source="testapp.Customer", send_actor=False
    )
    with eventing.actor("billing-job"):
        Customer.objects.create(name="c")

    by_trigger = {e.trigger_name: e.payload for e in EventLog.objects.all()}
    assert by_trigger["with_actor"]["actor"] == "billing-job"
    assert "actor" not in by_trigger["without_actor"]


# transaction=True: a command line closes the database connections when it ends.
@pytest.mark.django_db(transaction=True)
def test_a_management_command_is_the_actor_of_its_writes_where_the_project_opts_in():
    TriggerFactory(type="DB_INSERT", source="auth.User")
    line = ["manage.py", "createsuperuser", "--noinput", "--email", "r@example.com"]
    with mock.patch.dict(os.environ, {"DJANGO_SUPERUSER_PASSWORD": "pw-for-test-only"}):
        execute_from_command_line([*line, "--username", "root"])
        with eventing.actor("provisioning"):  # an actor already known is kept
            execute_from_command_line([*line, "--username", "root2"])
        # Not opted in (Django's own call_command): no actor, Django's execute untouched.
        call_command(
            "createsuperuser", "--noinput", "--username", "root3", "--email", "x@example.com"
        )

    actors = {d["new"]["username"]: d.get("actor") for d in data_of()}
    assert actors == {"root": "manage:createsuperuser", "root2": "provisioning", "root3": None}
    assert "password" not in data_of()[0]["new"]
    # Django's own method, as its module defines it: nothing of Django's is replaced.
    assert BaseCommand.execute.__module__ == "django.core.management.base"
    assert not hasattr(BaseCommand.execute, "__wrapped__")


def test_only_a_command_line_naming_a_command_has_an_actor():
    assert command_actor(["manage.py", "migrate", "--noinput"]) == "manage:migrate"
    assert command_actor(["manage.py"]) is None
    assert command_actor(["manage.py", "--version"]) is None
    assert command_actor(["manage.py", "help", "migrate"]) is None


def test_threads_and_tasks_each_see_their_own_actor():
    seen: dict[str, str | None] = {}

    def in_thread():
        seen["thread"] = current_actor()

    async def task(name: str) -> str | None:
        with eventing.actor(name):
            await asyncio.sleep(0)  # let the other task run inside its own block
            return current_actor()

    async def both():
        return await asyncio.gather(task("a"), task("b"))

    with eventing.actor("main"):
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        assert asyncio.run(both()) == ["a", "b"]
        assert current_actor() == "main"
    assert seen == {"thread": None}  # a new thread starts with no actor
    assert current_actor() is None


def test_an_actor_must_be_a_non_empty_string():
    with pytest.raises(ValueError, match="non-empty"), eventing.actor(""):
        pass


@pytest.mark.django_db
def test_an_update_carries_the_actor_of_the_update_not_of_the_insert():
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    with eventing.actor("importer"):
        order = Order.objects.create(status="new")
    with eventing.actor("cashier"):
        order.status = "paid"
        order.save()

    [data] = data_of("DB_UPDATE")
    assert data["actor"] == "cashier"
    assert data["changed"] == ["status"]
