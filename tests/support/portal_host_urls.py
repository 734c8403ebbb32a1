"""The standalone URLs plus a page of the "host site" that frames the owners' portal."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.html import format_html

from config.urls import urlpatterns as standalone


def host_page(request: HttpRequest) -> HttpResponse:
    """A host's page showing the portal link `src` in an iframe."""
    return HttpResponse(
        format_html(
            '<!doctype html><title>Host</title><h1 id="host">Your account</h1>'
            '<iframe id="portal" src="{}" width="1200" height="700"></iframe>',
            request.GET["src"],
        )
    )


urlpatterns = [path("host-page/", host_page), *standalone]
