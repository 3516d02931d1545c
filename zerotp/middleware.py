"""Project-wide middleware and error views that must not import DRF's views (they load
before DRF's settings are ready)."""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from zerotp.errors import error_body


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the envelope under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        body = error_body("server_error", "Something went wrong on our side; it has been logged.")
        return JsonResponse(body, status=500)
    return defaults.server_error(request)


class DatabaseUnavailableMiddleware:
    """While the database is unreachable (a restart, a failover), API clients get a 503
    with Retry-After in the envelope: a retry is safe, nothing was written."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        if not request.path.startswith("/api/"):
            return None
        logging.getLogger(__name__).error("database unavailable: %s", exception)
        body = error_body(
            "service_unavailable", "The database is briefly unavailable; retry in a few seconds."
        )
        return JsonResponse(body, status=503, headers={"Retry-After": "5"})
