"""Project-wide middleware and error views that must not import DRF's views (they load
before DRF's settings are ready)."""

import logging
from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from zerotp.errors import error_body


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: the envelope under /api/, Django's page elsewhere. Django answers with it
    before any view runs, for a Host not in ALLOWED_HOSTS above all."""
    if request.path.startswith("/api/"):
        if isinstance(exception, DisallowedHost):
            message = "The Host header names a site this server does not serve."
        else:
            message = "The request is malformed."
        return JsonResponse(error_body("invalid_request", message), status=400)
    return defaults.bad_request(request, exception)


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


class ChunkedBodyMiddleware:
    """A body sent with `Transfer-Encoding: chunked` has no Content-Length, and Django and
    DRF both read a request without one as having no body (an order was answered
    "application_id: This field is required"). gunicorn takes the chunks apart and ends
    `wsgi.input` where the body ends (`wsgi.input_terminated`, as mod_wsgi does), so the
    body is read here, up to API_MAX_BODY_BYTES, and given its length. A server that does
    neither (Django's runserver hands the application none of it) answers 411: the client
    can send the same body with a Content-Length."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        if (
            meta.get("CONTENT_LENGTH")
            or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        ):
            return self.get_response(request)
        if not meta.get("wsgi.input_terminated"):
            return _refusal(
                request,
                411,
                "length_required",
                "Send the body with a Content-Length header: this server cannot read a "
                "chunked one.",
            )
        limit = settings.API_MAX_BODY_BYTES
        body = meta["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            message = f"The request body is over {limit} bytes."
            return _refusal(request, 413, "payload_too_large", message)
        meta["CONTENT_LENGTH"] = str(len(body))
        # WSGIRequest read CONTENT_LENGTH once, when it was built, and bounded its stream by it:
        # the body read here, whole, is the stream now (it ends where the body ends).
        request._stream = BytesIO(body)
        return self.get_response(request)


def _refusal(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code, message), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
