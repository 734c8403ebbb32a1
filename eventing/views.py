"""Operational endpoints: Prometheus metrics and the health check."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from eventing.conf import settings
from eventing.ops import health as health_checks
from eventing.ops import metrics


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; needs `Authorization: Bearer <METRICS_TOKEN>` when one is set."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JsonResponse(
                {"detail": "Metrics need Authorization: Bearer <token>."}, status=401
            )
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    """JSON health of database, broker and sweeper; 503 when any fails.

    `?checks=database,broker` limits the checks (e.g. for a web container's liveness probe,
    which should not depend on beat).
    """
    wanted = request.GET.get("checks")
    if wanted:
        names = tuple(name.strip() for name in wanted.split(",") if name.strip())
        unknown = sorted(set(names) - set(health_checks.CHECKS))
        if unknown:
            return JsonResponse(
                {
                    "checks": f"Unknown check(s) {', '.join(unknown)}; choose from "
                    f"{', '.join(health_checks.CHECKS)}."
                },
                status=400,
            )
    else:
        names = health_checks.CHECKS
    report = health_checks.health(names)
    return JsonResponse(report, status=200 if report["ok"] else 503)
