"""The Mission Control admin site: Django's admin with a dashboard and a queue-event page."""

from django.contrib import admin
from django.urls import path

from . import charts


class MissionControlSite(admin.AdminSite):
    """Django's admin, titled Mission Control."""

    site_header = "Mission Control"
    site_title = "Mission Control"
    index_title = "Eventing"
    index_template = "mission_control/index.html"
    # The side menu repeats the home page's three models and took 300 px from every list,
    # which then scrolled sideways at 1280 px; breadcrumbs and the home page link them.
    enable_nav_sidebar = False

    def get_urls(self):
        from .backfill import backfill_view, batch_view, count_view
        from .views import dashboard_health_view, queue_event_view

        extra = [
            path("queue-event/", self.admin_view(queue_event_view), name="queue_event"),
            path("backfill/", self.admin_view(backfill_view), name="backfill"),
            path("backfill/count/", self.admin_view(count_view), name="backfill_count"),
            path("backfill/batch/", self.admin_view(batch_view), name="backfill_batch"),
            path("health/", self.admin_view(dashboard_health_view), name="health"),
        ]
        return extra + super().get_urls()

    def index(self, request, extra_context=None):
        """The app list, under the dashboard for users who may see event logs."""
        from . import dashboard

        context = dict(extra_context or {})
        if request.user.has_perm("eventing.view_eventlog"):
            board = dashboard.build()
            context["dashboard"] = board
            context["chart_1h"] = charts.line_chart(
                board.per_minute_1h, title="Events per minute, last hour"
            )
            context["chart_24h"] = charts.line_chart(
                board.per_minute_24h, title="Events per minute, last 24 hours"
            )
        context["can_queue"] = request.user.has_perm("eventing.queue_event")
        return super().index(request, context)


site = MissionControlSite(name="mission_control")
