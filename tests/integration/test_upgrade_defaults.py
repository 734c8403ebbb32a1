"""Triggers that exist before the migrations adding the circuit breaker and `send_actor` keep
their behaviour; triggers created after them get the new defaults."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from triggers.models import Trigger

BEFORE = [("triggers", "0004_trigger_send_authorization")]


@pytest.mark.django_db(transaction=True)
def test_existing_triggers_keep_no_circuit_and_no_actor_new_ones_get_the_defaults():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    try:
        old_state = executor.loader.project_state(BEFORE).apps
        old_trigger = old_state.get_model("triggers", "Trigger").objects.create(
            name="from_before", type="DB_INSERT", source="testapp.Item", url="http://x.test/"
        )
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
        kept = Trigger.objects.get(pk=old_trigger.pk)
        assert (kept.circuit_failures, kept.send_actor) == (0, False)
        created = Trigger.objects.create(
            name="from_after", type="DB_INSERT", source="testapp.Item", url="http://x.test/"
        )
        created.refresh_from_db()
        assert (created.circuit_failures, created.send_actor) == (10, True)
    finally:
        MigrationExecutor(connection).migrate(latest)
