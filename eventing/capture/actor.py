"""Who made a change: the actor DB events carry, from a request, a command or `eventing.actor()`.

Commands are attributed only where a project opts in, by running `manage.py` through
`eventing.management.execute_from_command_line`: nothing of Django's is replaced.

The actor lives in a context variable, so each thread and each asyncio task sees its own (a new
thread starts with none). A request's user is resolved only when an event needs it: most
requests write nothing that has a trigger, and reading `request.user` costs a query.
In database capture mode the trigger functions cannot see Python, so every write statement
run while an actor is known first sets it as the transaction-local setting `eventing.actor`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
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


def pass_actor(execute, sql, params, many, context):
    """Execute wrapper: before a write, set `eventing.actor` for the trigger functions.

    Inside a transaction the setting is transaction-local (`set_config(…, true)`); a write in
    autocommit mode is a transaction of its own, so the setting is set for the session around
    that one statement and cleared after. A write with no actor after one with an actor in the
    same transaction clears it, so it is not attributed to the earlier actor.
    """
    connection = context["connection"]
    word = sql.lstrip()[:6].upper() if isinstance(sql, str) else ""
    if not word.startswith(WRITE_VERBS) or settings.CAPTURE != "database":
        return execute(sql, params, many, context)
    name = current_actor()
    cursor = context["cursor"].cursor  # the driver's cursor: not through these wrappers again
    if name is None:
        if getattr(connection, "eventing_actor_set", False):
            cursor.execute("SELECT set_config(%s, '', true)", [SETTING])
            connection.eventing_actor_set = False
        return execute(sql, params, many, context)
    if connection.in_atomic_block:
        cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, name])
        connection.eventing_actor_set = True
        return execute(sql, params, many, context)
    cursor.execute("SELECT set_config(%s, %s, false)", [SETTING, name])
    try:
        return execute(sql, params, many, context)
    finally:
        cursor.execute("SELECT set_config(%s, '', false)", [SETTING])


def install_actor_wrapper(sender, connection, **kwargs) -> None:
    """On a new PostgreSQL connection, add `pass_actor` (idle unless CAPTURE = "database")."""
    if connection.vendor != "postgresql":
        return
    if pass_actor not in connection.execute_wrappers:
        connection.execute_wrappers.append(pass_actor)


def actor_connect() -> None:
    """Wire database capture's actor setting (commands opt in: eventing.management)."""
    connection_created.connect(install_actor_wrapper, dispatch_uid="eventing.actor_wrapper")
