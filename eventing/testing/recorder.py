"""What a code path emits, recorded in the test process, with assertions on it."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction

from eventing.conf import settings
from eventing.dispatch.publish import held_by
from eventing.recording.emit import recorded
from eventing.store import trigger_cache

# Marks an argument the caller left out (None is a value a payload or an owner may have).
ANY: Any = object()


@dataclass(frozen=True)
class Emitted:
    """One emitted event: one per recorded row, or one with `trigger` None when an emit()
    matched no trigger (so a host test sees the call without configuring a trigger)."""

    type: str
    payload: Any
    source: str = ""
    trigger: str | None = None
    owner: Any = None
    event_id: uuid.UUID | None = None
    status: str = ""

    def __str__(self) -> str:
        where = f"trigger={self.trigger}" if self.trigger else "no trigger matched"
        extra = f" source={self.source}" if self.source else ""
        extra += f" owner={self.owner!r}" if self.owner is not None else ""
        return f"{self.type} ({where}{extra}) payload={shown(self.payload)}"


class Survival:
    """Whether an emission's transaction has not rolled it back: a no-op on-commit callback,
    which Django drops with the savepoint or transaction the emission ran in."""

    def __init__(self, using: str) -> None:
        self.connection = connections[using]  # the emitting thread's own connection
        # Under manual transaction management nothing can tell: taken as emitted.
        self.committed = not self.connection.in_atomic_block and not self.connection.autocommit
        if not self.committed:
            transaction.on_commit(self.commit, using=using)  # runs at once in autocommit

    def commit(self) -> None:
        self.committed = True

    def alive(self) -> bool:
        """Committed, or still waiting in an open transaction (a TestCase's)."""
        return self.committed or any(
            entry[1] == self.commit for entry in self.connection.run_on_commit
        )


def same_owner(recorded: Any, wanted: Any) -> bool:
    """Whether a recorded owner is `wanted`: equal, or the key emit() keeps for an owner
    instance (its model label and primary key as text)."""
    if recorded == wanted:
        return True
    meta = getattr(wanted, "_meta", None)
    return (
        meta is not None
        and getattr(recorded, "model", None) == meta.label
        and getattr(recorded, "pk", None) == str(wanted.pk)
    )


def shown(value: Any, limit: int = 300) -> str:
    """A payload as one line of JSON, cut at `limit` characters."""
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "…"


def contains(actual: Any, expected: Any) -> bool:
    """Whether `actual` holds `expected`: every key of an expected object present with a value
    that holds the expected one (recursively); anything else compared equal."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and contains(actual[key], value) for key, value in expected.items()
        )
    return actual == expected


class EmittedEvents:
    """The events emitted while recording, in order, and assertions about them."""

    def __init__(self) -> None:
        self.recorded: list[tuple[Emitted, Survival]] = []

    @property
    def events(self) -> list[Emitted]:
        """What was emitted, in order, leaving out what a rollback took back (a rolled-back
        transaction emits nothing)."""
        return [event for event, survival in self.recorded if survival.alive()]

    def __iter__(self) -> Iterator[Emitted]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.recorded.clear()

    def of_type(self, type: str) -> list[Emitted]:
        """The recorded events of `type`."""
        return [event for event in self.events if event.type == type]

    def matching(
        self,
        type: str,
        *,
        trigger: str | None = ANY,
        payload: Any = ANY,
        payload_contains: Any = ANY,
        source: str = ANY,
        owner: Any = ANY,
    ) -> list[Emitted]:
        """The recorded events of `type` that meet every condition given."""
        return [
            event
            for event in self.of_type(type)
            if (trigger is ANY or event.trigger == trigger)
            and (payload is ANY or event.payload == payload)
            and (payload_contains is ANY or contains(event.payload, payload_contains))
            and (source is ANY or event.source == source)
            and (owner is ANY or same_owner(event.owner, owner))
        ]

    def assert_emitted(
        self, type: str, *, count: int | None = None, **conditions: Any
    ) -> list[Emitted]:
        """Fail unless an event of `type` meeting `conditions` (trigger, payload,
        payload_contains, source, owner) was emitted (exactly `count` of them, if given);
        the matching events."""
        found = self.matching(type, **conditions)
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = "no" if count is None else f"{len(found)} instead of {count}"
            raise AssertionError(
                f"{wanted} {self.described(type, conditions)} emitted. {self.listing()}"
            )
        return found

    def assert_not_emitted(self, type: str, **conditions: Any) -> None:
        """Fail if an event of `type` meeting `conditions` was emitted, naming it."""
        found = self.matching(type, **conditions)
        if found:
            raise AssertionError(
                f"{len(found)} {self.described(type, conditions)} emitted, none expected. "
                f"{self.listing()}"
            )

    def assert_nothing_emitted(self) -> None:
        """Fail if anything at all was emitted."""
        if self.events:
            raise AssertionError(f"Nothing expected. {self.listing()}")

    @staticmethod
    def described(type: str, conditions: Mapping[str, Any]) -> str:
        """`type` event(s) with the conditions, as a failure message says them."""
        said = ", ".join(f"{name}={shown(value)}" for name, value in conditions.items())
        return f"{type} event(s)" + (f" with {said}" if said else "")

    def listing(self) -> str:
        """Everything recorded, one line each, for a failure message."""
        if not self.events:
            return "Nothing was emitted."
        lines = "\n".join(f"  - {event}" for event in self.events)
        return f"Emitted ({len(self.events)}):\n{lines}"

    def add(self, *, type: str, payload: Any, source: str, rows: list, owner: Any) -> None:
        """Record one emission: an Emitted per row, or one without trigger when there was none."""
        survival = Survival(settings.DATABASE)
        if not rows:
            emitted = Emitted(type=type, payload=payload, source=source, owner=owner)
            self.recorded.append((emitted, survival))
            return
        self.recorded.extend(
            (
                Emitted(
                    type=row.type,
                    payload=row.payload,
                    source=row.source,
                    trigger=row.trigger_name,
                    owner=owner,
                    event_id=row.id,
                    status=row.status,
                ),
                survival,
            )
            for row in rows
        )


def hold_rows(rows: list, using: str) -> None:
    """Rows recorded while only recording: kept in their table, sent nowhere."""


@contextlib.contextmanager
def capture_emits() -> Iterator[EmittedEvents]:
    """Record every event this process emits while the block runs; no broker is needed (the
    rows are written as usual, but never published). The block matches the triggers in the
    database as it starts: none of a rolled-back test lingers in the trigger cache."""
    events = EmittedEvents()
    trigger_cache.invalidate()

    def on_recorded(sender, *, type, payload, source, rows, owner=None, **more):
        events.add(type=type, payload=payload, source=source, rows=rows, owner=owner)

    uid = f"eventing.testing.{id(events)}"
    recorded.connect(on_recorded, dispatch_uid=uid, weak=False)
    try:
        with held_by(hold_rows):
            yield events
    finally:
        recorded.disconnect(dispatch_uid=uid)
