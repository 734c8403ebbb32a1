"""Row counts that stay fast on large tables: planner estimates instead of COUNT(*)."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db import DatabaseError, connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

# Below this estimate an exact count is cheap (the filter is selective) and more useful.
EXACT_BELOW = 10_000


def table_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's row estimate of the whole table (pg_class.reltuples), or None."""
    table = queryset.model._meta.db_table
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    # -1 means "never analysed": no estimate to trust.
    if not row or row[0] is None or row[0] < 0:
        return None
    return int(row[0])


def plan_estimate(queryset: QuerySet) -> int | None:
    """PostgreSQL's EXPLAIN row estimate of a filtered queryset, or None."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def estimated_count(queryset: QuerySet) -> int:
    """A row count that never scans a large table: exact when small, else the planner's guess."""
    if connections[queryset.db].vendor != "postgresql":
        return queryset.count()
    try:
        estimator = plan_estimate if queryset.query.where else table_estimate
        estimate = estimator(queryset)
    except (DatabaseError, KeyError, IndexError, TypeError, ValueError):
        estimate = None
    if estimate is None or estimate < EXACT_BELOW:
        return queryset.count()
    return estimate


def bounded_count(queryset: QuerySet, cap: int | None = None) -> tuple[int, bool]:
    """(count, estimated): exact when at most `cap` (EXACT_BELOW) rows match, reading no more
    than cap + 1 of them, else PostgreSQL's planner estimate (at least cap + 1)."""
    cap = EXACT_BELOW if cap is None else cap
    exact = queryset.order_by().values("pk")[: cap + 1].count()
    if exact <= cap:
        return exact, False
    return estimate_past(queryset, cap)


def bounded_counts(
    querysets: dict[str, QuerySet], cap: int | None = None
) -> dict[str, tuple[int, bool]]:
    """`bounded_count` of each queryset (all of one database), the capped counts in one
    statement: one round trip instead of one per figure."""
    cap = EXACT_BELOW if cap is None else cap
    if not querysets:
        return {}
    parts, params = [], []
    for i, queryset in enumerate(querysets.values()):
        sql, part_params = queryset.order_by().values("pk")[: cap + 1].query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped_{i})")
        params.extend(part_params)
    db = next(iter(querysets.values())).db
    with connections[db].cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        exact = cursor.fetchone()
    counts = dict(zip(querysets, exact, strict=True))
    past = {name: querysets[name] for name, count in counts.items() if count > cap}
    estimates = estimates_past(past, cap)
    return {name: estimates.get(name, (count, False)) for name, count in counts.items()}


def estimates_past(querysets: dict[str, QuerySet], cap: int) -> dict[str, tuple[int, bool]]:
    """`estimate_past` of each queryset, from one EXPLAIN of them all (UNION ALL: the planner
    estimates each branch as it would alone) on PostgreSQL."""
    if len(querysets) < 2 or connections[next(iter(querysets.values())).db].vendor != (
        "postgresql"
    ):
        return {name: estimate_past(queryset, cap) for name, queryset in querysets.items()}
    parts, params = [], []
    for queryset in querysets.values():
        sql, part_params = queryset.order_by().values("pk").query.sql_with_params()
        parts.append(f"({sql})")
        params.extend(part_params)
    try:
        with connections[next(iter(querysets.values())).db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {' UNION ALL '.join(parts)}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        branches = [int(branch["Plan Rows"]) for branch in plan[0]["Plan"]["Plans"]]
    except (DatabaseError, KeyError, IndexError, TypeError, ValueError):
        branches = []
    if len(branches) != len(querysets):
        # A branch the planner proved empty is left out: ask each one alone.
        return {name: estimate_past(queryset, cap) for name, queryset in querysets.items()}
    return {
        name: (max(estimate, cap + 1), True)
        for name, estimate in zip(querysets, branches, strict=True)
    }


def value_shares(queryset: QuerySet, column: str) -> tuple[dict[str, float], float] | None:
    """PostgreSQL's statistics of `column` of the queryset's table: the share of rows of each
    common value (as text), and the share of any other one value; None without statistics.
    What the planner multiplies an estimate by for `column = value`."""
    table = queryset.model._meta.db_table
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(
            "SELECT s.null_frac, s.n_distinct, s.most_common_vals::text::text[], "
            "s.most_common_freqs, c.reltuples FROM pg_stats AS s "
            "JOIN pg_class AS c ON c.oid = to_regclass(%s) "
            "WHERE s.schemaname = current_schema() AND s.tablename = %s AND s.attname = %s",
            [table, table, column],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    null_frac, n_distinct, values, freqs, rows = row
    shares = dict(zip(values or [], freqs or [], strict=True))
    # n_distinct < 0: minus the distinct values' share of the rows.
    distinct = -n_distinct * max(rows, 1) if n_distinct < 0 else n_distinct
    others = max(distinct - len(shares), 1)
    return shares, max(0.0, 1 - null_frac - sum(shares.values())) / others


def estimate_past(queryset: QuerySet, cap: int) -> tuple[int, bool]:
    """(count, estimated) of a queryset known to hold more than `cap` rows: the planner's
    estimate on PostgreSQL (at least cap + 1), an exact count elsewhere (small databases)."""
    if connections[queryset.db].vendor != "postgresql":
        return queryset.count(), False
    try:
        estimate = plan_estimate(queryset)
    except (DatabaseError, KeyError, IndexError, TypeError, ValueError):
        estimate = None
    return max(estimate or 0, cap + 1), True


class EstimatedCountPaginator(Paginator):
    """The admin paginator with `count` from `estimated_count` (pages past the end are empty)."""

    @cached_property
    def count(self) -> int:
        """Estimated number of objects across all pages."""
        return estimated_count(self.object_list)
