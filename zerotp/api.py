"""The API's shared plumbing: the error envelope, the JSON parser, pagination and the
schema pieces every view uses to document its errors."""

import json
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import exceptions, pagination, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import set_rollback

from zerotp import errors
from zerotp.converters import MAX_ID
from zerotp.errors import error_body
from zerotp.text import unstorable

# The HTTP status of each domain error's code (docs/API.md, "Errors").
HTTP_STATUS: dict[str, int] = {
    errors.InvalidRequest.code: 400,
    errors.InsufficientBalance.code: 402,
    errors.Forbidden.code: 403,
    errors.NotFound.code: 404,
    errors.OutOfStock.code: 409,
    errors.InvalidState.code: 409,
    errors.PriceAboveMax.code: 409,
    errors.PaymentUnavailable.code: 502,
    errors.IdempotencyConflict.code: 409,
    errors.PayloadTooLarge.code: 413,
    errors.RateLimited.code: 429,
    errors.TooManyActiveOrders.code: 429,
}


class KeyRefused(exceptions.AuthenticationFailed):
    """A missing, unknown, revoked or wrong-kind key: 401 with `WWW-Authenticate`, under
    the header's own code (`invalid_api_key`, `invalid_agent_key`)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = code


# DRF's own exceptions, by class, mapped to the contract's codes.
_DRF_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.ValidationError, "invalid_request"),
    (exceptions.ParseError, "invalid_request"),
    (exceptions.NotAuthenticated, "invalid_api_key"),
    (exceptions.AuthenticationFailed, "invalid_api_key"),
    (exceptions.PermissionDenied, "forbidden"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "rate_limited"),
]


def _flatten(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _flatten(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _flatten(value)]
    return [str(detail)]


def _fields(detail: Any) -> dict[str, list[str]]:
    if not isinstance(detail, dict):
        return {}
    return {str(name): _flatten(value) for name, value in detail.items()}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every error the API raises, DRF's included, as the contract's JSON envelope."""
    if isinstance(exc, Http404):
        exc = errors.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = errors.Forbidden()
    headers: dict[str, str] = {}
    if isinstance(exc, errors.DomainError):
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        set_rollback()
        body = error_body(exc.code, exc.message, exc.fields)
        return Response(body, status=HTTP_STATUS[exc.code], headers=headers)
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let it be a 500 and be logged
    # APIView.handle_exception sets auth_header on an authentication error; no stub has it.
    auth_header: str | None = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    if isinstance(exc, KeyRefused):
        body = error_body(exc.error_code, " ".join(_flatten(exc.detail)))
    else:
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "error")
        if isinstance(exc, exceptions.ValidationError):
            fields = _fields(exc.detail)
            if fields:
                summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
                message = f"Invalid request: {summary}"
            else:
                message = " ".join(_flatten(exc.detail)) or "Invalid request."
            body = error_body(code, message, fields)
        else:
            body = error_body(code, " ".join(_flatten(exc.detail)))
        if isinstance(exc, exceptions.Throttled):
            wait: float | None = exc.wait  # type: ignore[attr-defined]  # set in __init__; not in the stubs
            if wait is not None:
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


class LenientJSONParser(BaseParser):
    """JSON, whatever Content-Type the client sent (curl -d sends a form type by default).

    The body is read up to API_MAX_BODY_BYTES; anything longer is a 413 before parsing.
    DRF reads the raw stream, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply here.

    `JSONOnlyNegotiation` picks this parser for every request, so `media_type` only says
    what the OpenAPI schema documents: JSON, the one thing the body is parsed as.
    """

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise errors.PayloadTooLarge(f"The request body is over {limit} bytes.")
        if not raw.strip():
            return {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.InvalidRequest("The request body is not valid UTF-8.") from None
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise errors.InvalidRequest(f"The request body is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def json_object(data: Any) -> dict:
    """The parsed body, which must be a JSON object."""
    if not isinstance(data, dict):
        raise errors.InvalidRequest("The request body must be a JSON object.")
    return data


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict:
    serializer = serializer_class(data=json_object(data))
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class StrictIntegerField(serializers.IntegerField):
    """An integer that is a JSON number, not a string or a boolean that looks like one."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string that is a JSON string, not a number DRF would quietly turn into one."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if unstorable(data):
            raise serializers.ValidationError(
                "NUL characters and lone UTF-16 surrogates are not allowed."
            )
        return super().to_internal_value(data)


def _is_id(text: str) -> bool:
    """0 to the largest bigint, in ASCII digits (int() would also take "+1", " 1", "١")."""
    return re.fullmatch(r"[0-9]{1,19}", text) is not None and int(text) <= MAX_ID


def _invalid_cursor() -> errors.InvalidRequest:
    return errors.InvalidRequest(
        "The cursor is not valid: use the `next` URL of the previous page.",
        fields={"cursor": ["Invalid cursor."]},
    )


class CursorPage(pagination.CursorPagination):
    """`{"results": [...], "next": url or null}`, newest first, stable under inserts."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = "-id"

    def decode_cursor(self, request: Any) -> Any:
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise _invalid_cursor() from None
        # DRF checks the offset and the direction but hands the position (the id to page
        # from) to the database as it came: a forged one was a 500.
        # The stubs say int, but the position is the query string's text, decoded as it came.
        if (
            cursor is not None
            and cursor.position is not None
            and not _is_id(cast(str, cursor.position))
        ):
            raise _invalid_cursor()
        return cursor

    def get_page_size(self, request: Any) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # DRF ignores a limit it cannot use and serves the default page; a client that asked
        # for 500 would take 200 for the end of the list.
        if not (_is_id(raw) and 1 <= int(raw) <= self.max_page_size):
            raise errors.InvalidRequest(
                f"limit must be a whole number from 1 to {self.max_page_size}.",
                fields={"limit": [f"Must be 1 to {self.max_page_size}."]},
            )
        return int(raw)

    def get_paginated_response(self, data: list) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    @classmethod
    def answer(
        cls, queryset: Any, request: Any, view: Any, render: Callable[[Any], Any]
    ) -> Response:
        """One page of the queryset, each row rendered: what every list endpoint answers."""
        paginator = cls()
        page: list[Any] | None = paginator.paginate_queryset(queryset, request, view=view)
        assert page is not None  # CursorPage always has a page size, so it always pages
        return paginator.get_paginated_response([render(row) for row in page])

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {"type": "string", "format": "uri", "nullable": True},
            },
        }


ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField()), required=False
                ),
            },
        )
    },
)

_ERROR_TEXT = {
    400: "invalid_request: malformed JSON, wrong types, unknown operator, missing field.",
    401: "invalid_api_key / invalid_agent_key: the key header is missing, unknown or revoked.",
    402: "insufficient_balance: the balance is below the price.",
    403: "forbidden: the account is disabled, or the agent key's owner is no longer a reseller.",
    404: "not_found: unknown id, or one that belongs to another account.",
    405: "method_not_allowed.",
    409: "out_of_stock, invalid_state, phone_number_conflict or idempotency_conflict.",
    413: "payload_too_large: the body or the batch is over the limit.",
    502: "payment_unavailable: the payment provider could not be reached; try again.",
    429: "rate_limited / too_many_active_orders, with Retry-After where it applies.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the error answers a view can give (405 and 429 are always possible)."""
    every = sorted({*statuses, 405, 429})
    return {s: OpenApiResponse(ErrorSerializer, description=_ERROR_TEXT[s]) for s in every}


@csrf_exempt  # a POST with a session cookie to a wrong path is still a JSON 404
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/ answer with the envelope, not Django's HTML page."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


class JSONOnlyNegotiation(BaseContentNegotiation):
    """The API speaks JSON whatever the Accept header says (never a 406)."""

    # DRF hands over the view's lists of parsers and renderers; the base class says Iterable.

    def select_parser(self, request: Any, parsers: Iterable[BaseParser]) -> BaseParser | None:
        listed = cast(list[BaseParser], parsers)
        return listed[0] if listed else None

    def select_renderer(
        self, request: Any, renderers: Iterable[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        renderer = cast(list[BaseRenderer], renderers)[0]
        return renderer, renderer.media_type
