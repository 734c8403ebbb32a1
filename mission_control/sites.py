"""The Mission Control admin site."""

from django.contrib import admin


class MissionControlSite(admin.AdminSite):
    """Django's admin, titled Mission Control."""

    site_header = "Mission Control"
    site_title = "Mission Control"
    index_title = "Eventing"


site = MissionControlSite(name="mission_control")
