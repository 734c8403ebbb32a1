"""Who made a change: the actor DB events carry, from a request, a command or `eventing.actor()`.

Commands are attributed only where a project opts in, by running `manage.py` through
`eventing.management.execute_from_command_line`: nothing of Django's is replaced.

The actor lives in a context variable, so each thread and each asyncio task sees its own (a new
thread starts with none). A request's user is resolved only when an event needs it: most
requests write nothing that has a trigger, and reading `request.user` costs a query.
In database capture mode the trigger functions cannot see Python, so before a write statement
the connection's setting `eventing.actor` is made to hold the actor (`pass_actor`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connections
from django.db.backends.signals import connection_created

from eventing.conf import settings

# What trigger functions read: current_setting('eventing.actor', true).
SETTING = "eventing.actor"
# Longest actor kept; a name is an identifier, not a document.
MAX_ACTOR_LENGTH = 200
# A write statement's first word: only these can fire a trigger function.
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "COPY")

Actor = str | Callable[[], str | None] | None
_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("eventing_actor", default=None)


@contextlib.contextmanager
def actor(name: str) -> Iterator[None]:
    """Attribute the DB events of the writes inside the block to `name` (nestable)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("An actor is a non-empty string, e.g. 'billing-job'.")
    token = _actor.set(name[:MAX_ACTOR_LENGTH])
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str | None:
    """The actor of the running code: a name, or None when nobody is known."""
    value = _actor.get()
    if callable(value):
        value = value()
    return value[:MAX_ACTOR_LENGTH] if value else None


def user_actor(user: Any) -> str | None:
    """`user:<username>` for an authenticated user, None for an anonymous one."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return f"user:{user.get_username()}"


class ActorMiddleware:
    """Make the request's user the actor of the DB events its writes cause.

    Put it after `AuthenticationMiddleware` in MIDDLEWARE. The user is read when an event is
    recorded, so a login or logout inside the view is seen, and requests that record nothing
    never load the user.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = _actor.set(lambda: user_actor(getattr(request, "user", None)))
        try:
            return self.get_response(request)
        finally:
            _actor.reset(token)

    async def __acall__(self, request):
        token = _actor.set(lambda: user_actor(getattr(request, "user", None)))
        try:
            return await self.get_response(request)
        finally:
            _actor.reset(token)


@dataclass
class SessionActor:
    """What one database connection's `eventing.actor` holds, as far as this process knows.

    `session` is the value set for the session (only ever set in autocommit mode, so no
    rollback can undo it); `local_set` says a transaction-local value may be in force (set in a
    transaction since the last autocommit write), so the session value cannot be trusted.
    """

    raw: Any
    session: str = ""
    local_set: bool = False


def _state(connection) -> SessionActor:
    """This connection's SessionActor, new when the driver's connection is (a reconnect)."""
    state = getattr(connection, "eventing_actor_state", None)
    if state is None or state.raw is not connection.connection:
        state = connection.eventing_actor_state = SessionActor(connection.connection)
    return state


def _set(connection, value: str, *, local: bool) -> None:
    """set_config on a cursor of its own: the statement's cursor and its results stay intact."""
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, %s)", [SETTING, value, local])


def pass_actor(execute, sql, params, many, context):
    """Execute wrapper: before a write, make `eventing.actor` hold the running code's actor.

    The setting is written on a separate cursor before the statement and never after it, so
    what the statement returns (rows, rowcount, RETURNING) is the statement's own. In autocommit
    mode the value is set for the session and only when it differs from what the session holds;
    inside a transaction a different value is set transaction-local, so a rollback cannot leave
    a stale actor behind and the next transaction falls back to the session's value.
    """
    connection = context["connection"]
    word = sql.lstrip()[:6].upper() if isinstance(sql, str) else ""
    if not word.startswith(WRITE_VERBS) or settings.CAPTURE != "database":
        return execute(sql, params, many, context)
    name = current_actor() or ""
    state = _state(connection)
    if connection.in_atomic_block or not connection.get_autocommit():
        if name != state.session or state.local_set:
            _set(connection, name, local=True)
            state.local_set = name != state.session
    else:
        # A write outside any transaction: whatever was transaction-local has ended.
        state.local_set = False
        if name != state.session:
            _set(connection, name, local=False)
            state.session = name
    return execute(sql, params, many, context)


def wrapper_wanted() -> bool:
    """Whether writes need `pass_actor`: only database capture reads the setting.

    Invalid EVENTING settings (reported by the system checks) need none.
    """
    try:
        return settings.CAPTURE == "database"
    except ImproperlyConfigured:
        return False


def install_actor_wrapper(sender, connection, **kwargs) -> None:
    """On a new PostgreSQL connection in database mode, add `pass_actor`."""
    if connection.vendor != "postgresql" or not wrapper_wanted():
        return
    if pass_actor not in connection.execute_wrappers:
        connection.execute_wrappers.append(pass_actor)


def _rewrap(*, setting: str, **kwargs) -> None:
    """EVENTING changed (tests, a switch-over in a running process): add or remove the wrapper."""
    if setting != "EVENTING":
        return
    for connection in connections.all(initialized_only=True):
        if connection.vendor != "postgresql":
            continue
        if wrapper_wanted():
            install_actor_wrapper(None, connection)
        elif pass_actor in connection.execute_wrappers:
            connection.execute_wrappers.remove(pass_actor)


def actor_connect() -> None:
    """Wire database capture's actor setting (commands opt in: eventing.management)."""
    connection_created.connect(install_actor_wrapper, dispatch_uid="eventing.actor_wrapper")
    setting_changed.connect(_rewrap, dispatch_uid="eventing.actor_rewrap")
