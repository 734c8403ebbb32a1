"""Mission Control at volume: what a page reads is bounded, not the rows of the last 24 h.

The caps are lowered here so a few rows stand for a busy day; the bench
(bench/bench_mission_control.py) measures the pages at 1M events in 24 h.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from eventing.models import EventLog, EventStatus, InvocationLog
from mission_control import charts, counting, dashboard
from mission_control.admin import triggers as trigger_admin
from mission_control.admin.events import EventLogAdmin
from mission_control.admin.invocations import InvocationLogAdmin
from mission_control.keyset import decode_cursor, encode_cursor
from tests.factories import TriggerFactory
from tests.support.mission_control import make_event

pytestmark = pytest.mark.django_db

# A COUNT whose statement holds no LIMIT counts every matching row.
UNBOUNDED_COUNT = re.compile(r"COUNT\(", re.IGNORECASE)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="estimates are PostgreSQL's planner's"
)


# The chart's count on PostgreSQL: one range count per bucket start of an array.
CHART_COUNT = re.compile(r"unnest\(ARRAY\[(?P<starts>[^\]]*)\]::timestamptz\[\]\)", re.IGNORECASE)
CHART_STEP = re.compile(r"'0 days (?P<seconds>[0-9.]+) seconds'::interval")
STAMP = re.compile(r"'([^']+)'::timestamptz")
# The open bucket, and one just closed within dashboard.CLOSE_GRACE: 2 × 15 minutes at most.
OPEN_BUCKETS = dt.timedelta(minutes=30)


def chart_window(sql: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The created_at window a chart count statement counts, or None if `sql` is none."""
    counted, step = CHART_COUNT.search(sql), CHART_STEP.search(sql)
    if not (counted and step):
        return None
    starts = [dt.datetime.fromisoformat(v) for v in STAMP.findall(counted["starts"])]
    return min(starts), max(starts) + dt.timedelta(seconds=float(step["seconds"]))


def open_buckets_only(sql: str) -> bool:
    """A chart count over the still-open buckets only: what a warm chart counts again."""
    window = chart_window(sql)
    return window is not None and window[1] - window[0] <= OPEN_BUCKETS


def event_log_counts(queries) -> list[str]:
    """Statements counting event_logs rows with nothing bounding what they read (no LIMIT,
    not just the chart's open buckets)."""
    return [
        sql
        for q in queries
        if '"event_logs"' in (sql := q["sql"])
        and UNBOUNDED_COUNT.search(sql)
        and "LIMIT" not in sql
        and not open_buckets_only(sql)
    ]


@postgres_only
def test_dashboard_never_counts_every_event_of_the_day(monkeypatch):
    monkeypatch.setattr(dashboard, "COUNT_CAP", 5)
    monkeypatch.setattr(counting, "EXACT_BELOW", 5)
    trigger = TriggerFactory()
    for _ in range(8):
        make_event(trigger, EventStatus.PROCESSED)
    for _ in range(2):
        make_event(trigger, EventStatus.FAILED)
    connection.cursor().execute("ANALYZE event_logs")
    dashboard.build(with_health=False)  # a warm chart: its closed buckets are counted once
    with CaptureQueriesContext(connection) as queries:
        board = dashboard.build(with_health=False)
    assert event_log_counts(queries.captured_queries) == []
    # Past the cap the figure is the planner's and says so; under it, exact.
    assert "processed" in board.estimated
    assert board.counts_24h["processed"] >= 6
    assert board.counts_24h["failed"] == 2
    assert "failed" not in board.estimated


def test_dashboard_query_count_does_not_grow_with_events(django_assert_max_num_queries):
    trigger = TriggerFactory()
    dashboard.build(with_health=False)  # fills the chart's closed buckets
    with CaptureQueriesContext(connection) as few:
        dashboard.build(with_health=False)
    for ago in range(0, 3600 * 20, 600):
        make_event(trigger, EventStatus.PROCESSED, created_ago_s=ago)
    dashboard.build(with_health=False)
    with django_assert_max_num_queries(len(few.captured_queries)):
        dashboard.build(with_health=False)


def test_dashboard_page_shows_estimates_with_a_sign(admin_client, monkeypatch):
    monkeypatch.setattr(dashboard, "COUNT_CAP", 2)
    monkeypatch.setattr(counting, "estimate_past", lambda queryset, cap: (cap + 40, True))
    trigger = TriggerFactory()
    for _ in range(4):
        make_event(trigger, EventStatus.PROCESSED)
    page = admin_client.get(reverse("mission_control:index")).content.decode()
    assert re.search(r'id="mc-count-processed".*?≈42<', page, re.DOTALL)
    assert re.search(r'id="mc-count-failed".*?>0<', page, re.DOTALL)


def test_most_failing_triggers_rank_the_latest_failures(monkeypatch):
    monkeypatch.setattr(dashboard, "FAILURE_SAMPLE", 3)
    old, new = TriggerFactory(name="old"), TriggerFactory(name="new")
    for _ in range(3):
        make_event(old, EventStatus.FAILED, created_ago_s=3600)
    for _ in range(2):
        make_event(new, EventStatus.FAILED, created_ago_s=60)
    rows = dashboard.most_failing_triggers(timezone.now() - dashboard.DAY)
    assert [(r["trigger_name"], r["failed"]) for r in rows] == [("new", 2), ("old", 1)]


def test_trigger_list_counts_stop_at_the_cap(admin_client, monkeypatch):
    monkeypatch.setattr(trigger_admin, "LIST_COUNT_CAP", 3)
    busy, quiet = TriggerFactory(name="busy"), TriggerFactory(name="quiet")
    for _ in range(6):
        make_event(busy, EventStatus.PROCESSED)
    make_event(quiet, EventStatus.PROCESSED)
    make_event(quiet, EventStatus.FAILED)
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("mission_control:triggers_trigger_changelist"))
    rows = {row.name: row for row in response.context["cl"].result_list}
    assert rows["busy"].processed_24h == 4  # the capped count: cap + 1 read at most
    assert (rows["quiet"].processed_24h, rows["quiet"].failed_24h) == (1, 1)
    page = response.content.decode()
    assert "50.0 %" in page  # quiet: exact
    if connection.vendor == "postgresql":
        assert event_log_counts(queries.captured_queries) == []
        assert "≈" in page  # busy: past the cap, the planner's estimate
    else:
        assert "100.0 %" in page  # elsewhere past the cap: counted exactly


def follow(admin_client, url: str) -> tuple[list, dict]:
    """One change-list page: its rows and its Older / Newer / Newest links."""
    response = admin_client.get(url)
    assert response.status_code == 200
    cl = response.context["cl"]
    return list(cl.result_list), {
        "older": cl.older_url,
        "newer": cl.newer_url,
        "newest": cl.newest_url,
    }


def test_event_list_pages_by_key_both_ways(admin_client, monkeypatch):
    # Four a page: the two rows sharing a time straddle the first page's end.
    monkeypatch.setattr(EventLogAdmin, "list_per_page", 4)
    trigger = TriggerFactory()
    events = [make_event(trigger, created_ago_s=60 * n) for n in range(8)]
    # Two rows with the same created_at (one batch): the id orders them.
    tie = make_event(trigger, created_ago_s=60 * 3)
    tie.created_at = events[3].created_at
    type(tie).objects.filter(pk=tie.pk).update(created_at=events[3].created_at)
    base = reverse("mission_control:eventing_eventlog_changelist")
    seen, url, pages = [], base, []
    with CaptureQueriesContext(connection) as queries:
        while url:
            rows, links = follow(admin_client, base + url if url.startswith("?") else url)
            seen += [row.pk for row in rows]
            pages.append((rows, links))
            url = links["older"]
    assert sorted(map(str, seen)) == sorted(str(e.pk) for e in [*events, tie])
    assert len(seen) == len(set(seen)) == 9
    assert len(pages) == 3
    assert all("OFFSET" not in q["sql"] for q in queries.captured_queries)
    # Newer from the last page comes back to the middle one, in the same order.
    last_rows, last_links = pages[-1]
    rows, _ = follow(admin_client, base + last_links["newer"])
    assert [r.pk for r in rows] == [r.pk for r in pages[1][0]]
    assert (pages[0][1]["newer"], pages[0][1]["newest"]) == (None, None)
    assert last_links["older"] is None
    assert last_links["newest"] is not None


def test_invocation_list_pages_by_key(admin_client, monkeypatch):
    monkeypatch.setattr(InvocationLogAdmin, "list_per_page", 2)
    event = make_event(TriggerFactory())
    now = timezone.now()
    for attempt in range(1, 6):
        InvocationLog.objects.create(
            event=event,
            attempt=attempt,
            invoked_at=now - timezone.timedelta(seconds=attempt),
            duration_ms=1,
            request={},
        )
    base = reverse("mission_control:eventing_invocationlog_changelist")
    attempts, url = [], base
    while url:
        rows, links = follow(admin_client, base + url if url.startswith("?") else url)
        attempts += [row.attempt for row in rows]
        url = links["older"]
    assert attempts == [1, 2, 3, 4, 5]
    page = admin_client.get(base).content.decode()
    assert "Older →" in page


def test_a_list_position_keeps_the_filters(admin_client, monkeypatch):
    monkeypatch.setattr(EventLogAdmin, "list_per_page", 1)
    trigger = TriggerFactory()
    make_event(trigger, EventStatus.FAILED)
    make_event(trigger, EventStatus.FAILED, created_ago_s=120)
    make_event(trigger, EventStatus.PROCESSED, created_ago_s=90)
    base = reverse("mission_control:eventing_eventlog_changelist")
    rows, links = follow(admin_client, base + "?status__exact=failed")
    assert parse_qs(urlsplit(links["older"]).query)["status__exact"] == ["failed"]
    rows, links = follow(admin_client, base + links["older"])
    assert [r.status for r in rows] == ["failed"]
    assert links["older"] is None


@pytest.mark.parametrize(
    ("query", "named"),
    [("cursor=nonsense", "cursor"), ("dir=sideways", "dir"), ("p=9000", "p")],
)
def test_a_bad_position_is_refused_naming_the_parameter(admin_client, query, named):
    response = admin_client.get(
        reverse("mission_control:eventing_eventlog_changelist") + "?" + query, follow=True
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any(f"'{named}'" in m for m in messages), messages


def test_a_cursor_round_trips():
    moment = timezone.now()
    assert decode_cursor(encode_cursor(moment, "abc")) == (moment, "abc")
    with pytest.raises(ValueError, match="not a list position"):
        decode_cursor("bm90IGEgY3Vyc29y")


def chart_windows(queries) -> list[tuple[dt.datetime, dt.datetime]]:
    """The created_at windows the chart counted in `queries`."""
    return [window for q in queries if (window := chart_window(q["sql"]))]


@postgres_only
def test_a_cold_chart_counts_within_its_budget_newest_first(monkeypatch):
    monkeypatch.setattr(dashboard, "CHART_COUNT_BUDGET", 10)
    trigger = TriggerFactory()
    # 48 events, one every 30 minutes over the day: the budget covers about 5 hours.
    for n in range(48):
        make_event(trigger, created_ago_s=60 + n * 1800)
    connection.cursor().execute("ANALYZE event_logs")
    now = timezone.now()
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        first = dashboard.day_series(now)
    [(since, until)] = chart_windows(queries.captured_queries)
    assert EventLog.objects.filter(created_at__gte=since, created_at__lt=until).count() <= 20
    values = [value for _, value in first]
    # The newest buckets are counted, the older ones are a gap (None), never a false zero.
    assert values[-1] is not None
    assert values[0] is None
    gap_ends = max(i for i, value in enumerate(values) if value is None)
    assert all(value is not None for value in values[gap_ends + 1 :])
    # Each later render counts more; the chart ends complete and exact.
    renders = 1
    series = first
    while any(value is None for _, value in series):
        series = dashboard.day_series(now)
        renders += 1
        assert renders < 20
    assert renders > 1
    assert sum(value * 15 for _, value in series) == pytest.approx(48)


@postgres_only
def test_every_dashboard_query_after_a_cache_clear_is_served_by_an_index(monkeypatch):
    # Counts past 0 rows are estimates here, as past 1,000 on a busy day.
    monkeypatch.setattr(counting, "EXACT_BELOW", 0)
    monkeypatch.setattr(dashboard, "COUNT_CAP", 0)
    trigger = TriggerFactory()
    for status in (EventStatus.PROCESSED, EventStatus.FAILED, EventStatus.STAGED):
        event = make_event(trigger, status)
        InvocationLog.objects.create(
            event=event, attempt=1, invoked_at=timezone.now(), duration_ms=5, request={}
        )
    connection.cursor().execute("ANALYZE event_logs, invocation_logs")
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        dashboard.build(with_health=False)
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT")
        and re.search(r'"(event_logs|invocation_logs)"', q["sql"])
    ]
    assert len(statements) >= 6  # counts, oldest due, latencies, failing, two charts
    with connection.cursor() as cursor:
        # A sequential scan is then chosen only where no index can answer.
        cursor.execute("SET enable_seqscan = off")
        try:
            for sql in statements:
                cursor.execute(f"EXPLAIN {sql}")
                plan = "\n".join(row[0] for row in cursor.fetchall())
                assert not re.search(r"Seq Scan on (event_logs|invocation_logs)", plan), (
                    sql,
                    plan,
                )
        finally:
            cursor.execute("RESET enable_seqscan")
    # And none counts every matching row: capped (LIMIT), or a chart window.
    unbounded = [
        sql
        for sql in statements
        if UNBOUNDED_COUNT.search(sql) and "LIMIT" not in sql and not chart_window(sql)
    ]
    assert unbounded == []


def test_a_chart_leaves_a_gap_where_a_bucket_is_not_counted():
    svg = charts.line_chart([("10:00", 1), ("10:15", None), ("10:30", 2), ("10:45", 3)], title="t")
    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 3
    assert "10:15" not in svg.replace(">10:00<", "")


@postgres_only
def test_the_dashboard_says_when_older_buckets_are_still_being_counted(admin_client, monkeypatch):
    monkeypatch.setattr(dashboard, "CHART_COUNT_BUDGET", 2)
    trigger = TriggerFactory()
    for n in range(12):
        make_event(trigger, created_ago_s=60 + n * 7200)
    connection.cursor().execute("ANALYZE event_logs")
    cache.clear()
    page = admin_client.get(reverse("mission_control:index")).content.decode()
    assert 'id="mc-chart-pending"' in page
    for _ in range(30):
        page = admin_client.get(reverse("mission_control:index")).content.decode()
        if 'id="mc-chart-pending"' not in page:
            break
    assert 'id="mc-chart-pending"' not in page


@postgres_only
def test_trigger_list_estimates_take_one_explain_per_status_not_per_trigger(
    admin_client, monkeypatch
):
    monkeypatch.setattr(trigger_admin, "LIST_COUNT_CAP", 2)
    busy = [TriggerFactory(name=f"busy-{n}") for n in range(4)]
    for trigger in busy:
        for _ in range(4):
            make_event(trigger, EventStatus.PROCESSED)
            make_event(trigger, EventStatus.FAILED)
    connection.cursor().execute("ANALYZE event_logs")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse("mission_control:triggers_trigger_changelist"))
    explains = [q for q in queries.captured_queries if q["sql"].startswith("EXPLAIN")]
    assert len(explains) == 2  # processed and failed, for the four triggers past the cap
    assert "≈" in response.content.decode()
    # Each busy trigger: about its share of the day's estimate (4 of the 16 of each status).
    for row in response.context["cl"].result_list:
        for status in (EventStatus.PROCESSED, EventStatus.FAILED):
            count, estimated = row.list_counts[status]
            assert estimated
            assert 3 <= count <= 6


@postgres_only
def test_the_dashboard_estimates_every_tile_past_its_cap_in_one_explain(monkeypatch):
    monkeypatch.setattr(dashboard, "COUNT_CAP", 2)
    trigger = TriggerFactory()
    for status in (EventStatus.PROCESSED, EventStatus.FAILED, EventStatus.CANCELLED):
        for _ in range(4):
            make_event(trigger, status)
    connection.cursor().execute("ANALYZE event_logs")
    dashboard.build(with_health=False)  # the charts' buckets, counted once
    with CaptureQueriesContext(connection) as queries:
        board = dashboard.build(with_health=False)
    explains = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("EXPLAIN")]
    assert len(explains) == 1
    assert explains[0].count("UNION ALL") == 2
    assert {"processed", "failed", "cancelled"} <= board.estimated
    assert all(board.counts_24h[status] >= 3 for status in ("processed", "failed", "cancelled"))
