"""Change lists paged by key: "older" and "newer" links carry the last row's (time, id).

OFFSET pages read every row before them: page 9000 of the invocation list read 450,000 index
entries and took 2.3–2.8 s at 1M rows. A key page starts where the index says, so every page
costs what the first one does. Numbered pages remain only when a user sorts by another column.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.dateparse import parse_datetime

from .counting import estimated_count

CURSOR_VAR = "cursor"
DIRECTION_VAR = "dir"
NEWER = "newer"
KEYSET_PARAMS = (CURSOR_VAR, DIRECTION_VAR)


def encode_cursor(value: dt.datetime, pk: Any) -> str:
    """The URL-safe key of a row: its time and primary key."""
    raw = f"{value.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[dt.datetime, str]:
    """(time, primary key) from `encode_cursor`'s text; ValueError when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("not a list position") from exc
    value, sep, pk = raw.partition("|")
    moment = parse_datetime(value) if sep else None
    if moment is None or not pk or len(pk) > 64:
        raise ValueError("not a list position")
    return moment, pk


def keyset_problems(request: HttpRequest, model: type[Model]) -> dict[str, str]:
    """Why `cursor`, `dir` or `p` cannot be used on a list paged by key, by parameter."""
    problems = {}
    text = request.GET.get(CURSOR_VAR)
    if text is not None:
        try:
            _, pk = decode_cursor(text)
            model._meta.pk.to_python(pk)
        except Exception:  # noqa: BLE001 - any failure to read it is the same bad input
            problems[CURSOR_VAR] = f"{text[:40]!r} is not a list position"
    direction = request.GET.get(DIRECTION_VAR)
    if direction not in (None, NEWER):
        problems[DIRECTION_VAR] = f"{direction[:40]!r} is not {NEWER!r}"
    if request.GET.get(PAGE_VAR, "0") not in ("0", "1") and not request.GET.get("o"):
        problems[PAGE_VAR] = "pages go by position here: follow the Older and Newer links"
    return problems


def rows_after(queryset: QuerySet, field: str, cursor: tuple[dt.datetime, str], newer: bool):
    """`queryset` from just past `cursor` in (field, pk) order: older rows, or newer ones."""
    value, pk = cursor
    if newer:
        # field >= value narrows the index range; the exclude drops the cursor's own ties.
        return queryset.filter(**{f"{field}__gte": value}).exclude(**{field: value, "pk__lte": pk})
    return queryset.filter(**{f"{field}__lte": value}).exclude(**{field: value, "pk__gte": pk})


def first_rows(queryset: QuerySet, field: str, count: int, newer: bool) -> list[Model]:
    """The first `count` rows of `queryset` in (field, pk) order (descending unless `newer`).

    PostgreSQL reads ORDER BY field alone off the field's index, but ORDER BY field, pk sorts
    every matching row. So the rows come by field alone, and the rows sharing the last one's
    time (one emit's batch) are fetched again, all of them in pk order, to make the cut exact.
    """
    sign = "" if newer else "-"
    rows = list(queryset.order_by(f"{sign}{field}")[:count])
    if not rows:
        return rows
    edge = getattr(rows[-1], field)
    ties = queryset.filter(**{field: edge}).order_by(f"{sign}pk")[:count]
    return [row for row in rows if getattr(row, field) != edge] + list(ties)[:count]


class KeysetChangeList(ChangeList):
    """A change list ordered newest first by the admin's `keyset_field`, paged by key."""

    def get_filters_params(self, params=None):
        """The position is no filter."""
        lookups = super().get_filters_params(params)
        return {k: v for k, v in lookups.items() if k not in KEYSET_PARAMS}

    def get_query_string(self, new_params=None, remove=None):
        """Links to other filters or sorts start from the newest rows again."""
        new_params = dict(new_params or {})
        drop = [name for name in KEYSET_PARAMS if name not in new_params]
        return super().get_query_string(new_params, [*(remove or []), *drop])

    @property
    def keyset_field(self) -> str:
        """The time column the list is ordered and paged by."""
        return self.model_admin.keyset_field

    @property
    def paged_by_key(self) -> bool:
        """Whether this request lists in the default order (a user's sort falls back to pages)."""
        return "o" not in self.params

    def get_results(self, request: HttpRequest) -> None:
        if not self.paged_by_key:
            return super().get_results(request)
        text = request.GET.get(CURSOR_VAR)
        newer = request.GET.get(DIRECTION_VAR) == NEWER and text is not None
        queryset = self.queryset
        if text is not None:
            queryset = rows_after(queryset, self.keyset_field, decode_cursor(text), newer)
        rows = first_rows(queryset, self.keyset_field, self.list_per_page + 1, newer)[
            : self.list_per_page + 1
        ]
        more = len(rows) > self.list_per_page
        rows = rows[: self.list_per_page]
        if newer:
            rows.reverse()
        self.result_list = rows
        self.result_count = len(rows)
        self.full_result_count = None
        self.show_full_result_count = False
        self.show_admin_actions = bool(rows)
        self.can_show_all = False
        self.show_all = False
        self.multi_page = True
        self.paginator = None
        # "About N": the planner's estimate on large tables, never a COUNT over them.
        self.estimated_total = estimated_count(self.queryset)
        # Older rows exist past the last one shown unless this page ran out going older.
        has_older = more if not newer else text is not None
        has_newer = (more if newer else text is not None) and bool(rows)
        self.older_url = self.position_url(rows[-1], None) if rows and has_older else None
        self.newer_url = self.position_url(rows[0], NEWER) if has_newer else None
        self.newest_url = self.get_query_string({}, [CURSOR_VAR]) if text is not None else None

    def position_url(self, row: Model, direction: str | None) -> str:
        """This list from just past `row`, going older (None) or newer."""
        params = {CURSOR_VAR: encode_cursor(getattr(row, self.keyset_field), row.pk)}
        if direction:
            params[DIRECTION_VAR] = direction
        return self.get_query_string(params, [PAGE_VAR])
