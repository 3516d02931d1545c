"""The sms-activate text protocol, `/stubs/handler_api.php`: the dialect existing bots and
client libraries speak, answered from the same services as the REST API (an order made
here is the same order). docs/SMS-ACTIVATE.md holds the research behind every word and
shape below, and the choices made where the sources disagree.

Every protocol answer is HTTP 200 with the bare word (no newline) or, for the JSON
actions, a JSON body; only the transport answers otherwise (a rate limit: 429)."""

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from accounts.api import KeyedRequest, KeyedView
from accounts.authentication import ApiKeyParameterAuthentication, parameter
from billing.services import wallet_balance
from modems.carriers import carrier_of
from modems.models import Modem
from orders import services
from orders.models import OPEN_STATUSES, Order, OrderMessage, OrderStatus
from orders.selectors import (
    order_and_messages,
    orders_of,
    service_offer,
    service_offers,
    services_catalogue,
)
from orders.statements import stock_counts
from zerotp import errors
from zerotp.converters import MAX_ID

log = logging.getLogger(__name__)

IDR = 360  # ISO 4217 numeric: getNumberV2's currency
COUNTRY_NAMES = {6: ("Индонезия", "Indonesia", "印度尼西亚")}  # (rus, eng, chn), by protocol id
ACTIVE_ACTIVATIONS_MAX = 100
MAX_PRICE = 2**31 - 1  # prices are 32-bit integers: a maxPrice above any price is no limit


class Answer(Exception):
    """Stop the action here and answer this word (a protocol error)."""

    def __init__(self, word: str) -> None:
        super().__init__(word)
        self.word = word


TEXT = "text/plain; charset=utf-8"


def text(word: str) -> HttpResponse:
    return HttpResponse(word, content_type=TEXT)


def as_json(data: Any) -> HttpResponse:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return HttpResponse(body, content_type="application/json")


def protocol_time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- Parameters ---------------------------------------------------------------------------


def _our_country(request: Request) -> bool:
    """No country, `any` or `*` (as grizzly sends) mean this server's."""
    country = parameter(request, "country").strip()
    return country in ("", "any", "*") or country == str(settings.ACTIVATION_COUNTRY)


def _carriers(request: Request) -> list[str | None]:
    """The `operator` parameter: mobile carriers, comma-separated; none or `any`: all."""
    names = [carrier_of(name) for name in parameter(request, "operator").split(",")]
    names = [name for name in names if name and name != "any"]
    return list(dict.fromkeys(names)) or [None]


def _max_price(request: Request) -> int | None:
    """maxPrice in whole rupiah; not a number: ignored, as the protocol's servers do."""
    try:
        value = Decimal(parameter(request, "maxPrice").strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    return MAX_PRICE if value > MAX_PRICE else int(value)  # never int() of 1e999999999


def _activation(request: Request) -> int:
    order_id = parameter(request, "id").strip()
    # Longer than any id: not even read as a number (int() refuses 4,300 digits and more).
    if not (
        order_id.isascii() and order_id.isdigit() and len(order_id) <= len(str(MAX_ID))
    ) or not (0 < int(order_id) <= MAX_ID):
        raise Answer("NO_ACTIVATION")
    return int(order_id)


# --- Ordering ------------------------------------------------------------------------------


def _order(request: KeyedRequest) -> Order:
    """getNumber: the cheapest pool with stock whose price is within maxPrice, of the
    carriers asked for. The order is the REST API's own (services.order_create)."""
    offer = service_offer(parameter(request, "service").strip())
    if offer is None:
        raise Answer("BAD_SERVICE")
    if not _our_country(request):
        raise Answer("NO_NUMBERS")
    max_price = _max_price(request)
    pools = [pool for pool, price in offer.prices if max_price is None or price <= max_price]
    if not pools:
        raise Answer(f"WRONG_MAX_PRICE:{offer.prices[0][1]}")
    carriers = _carriers(request)
    risen: int | None = None  # a price above maxPrice: it rose since the copy was taken
    for pool in pools:
        for carrier in carriers:
            try:
                return services.order_create(
                    buyer=request.user,
                    application_id=offer.application_id,
                    operator=pool,
                    carrier=carrier,
                    max_price=max_price,
                ).order
            except (errors.OutOfStock, errors.InvalidRequest):
                # No free number here (or no price any more: staff just removed it); the
                # next pool or carrier may have one.
                continue
            except errors.PriceAboveMax as exc:
                risen = exc.price
    if risen is not None:
        raise Answer(f"WRONG_MAX_PRICE:{risen}")
    raise Answer("NO_NUMBERS")


# The words of the errors an order can end in (docs/SMS-ACTIVATE.md, section 6.3).
_ORDER_REFUSALS: dict[type[errors.DomainError], str] = {
    errors.NotFound: "BAD_SERVICE",  # the application is disabled
    errors.TooManyActiveOrders: "NO_NUMBERS",  # no word of its own: "try later"
    errors.RateLimited: "NO_NUMBERS",  # the scan guard's pause: the same
    errors.InsufficientBalance: "NO_BALANCE",
}


def _placed(request: KeyedRequest) -> Order:
    try:
        return _order(request)
    except errors.DomainError as exc:
        word = _ORDER_REFUSALS.get(type(exc))
        if word is None:
            raise
        raise Answer(word) from None


def get_number(request: KeyedRequest) -> HttpResponse:
    order = _placed(request)
    return text(f"ACCESS_NUMBER:{order.pk}:{order.phone_number}")


def get_number_v2(request: KeyedRequest) -> HttpResponse:
    order = _placed(request)
    return as_json(
        {
            "activationId": order.pk,
            "phoneNumber": order.phone_number,
            "activationCost": order.price,
            "currency": IDR,
            "countryCode": str(settings.ACTIVATION_COUNTRY),
            "canGetAnotherSms": "1",
            "activationTime": protocol_time(order.created_at),
            "activationEnd": protocol_time(order.expires_at),
            "activationEndTime": protocol_time(order.expires_at),
            "activationOperator": order.operator,
        }
    )


# --- An activation's state ------------------------------------------------------------


def _read(request: KeyedRequest) -> tuple[Order, list[OrderMessage]]:
    found = order_and_messages(request.user, _activation(request))
    if found is None:
        raise Answer("NO_ACTIVATION")
    return found


def _dead(order: Order) -> bool:
    """Cancelled, or expired with no SMS: nothing will come (STATUS_CANCEL)."""
    return order.effective_status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED)


def get_status(request: KeyedRequest) -> HttpResponse:
    order, messages = _read(request)
    if _dead(order):
        return text("STATUS_CANCEL")
    if not messages:
        return text("STATUS_WAIT_CODE")
    latest = messages[-1]
    waiting = order.another_sms_after is not None and latest.pk <= order.another_sms_after
    if waiting and order.effective_status == OrderStatus.COMPLETED:
        return text(f"STATUS_WAIT_RETRY:{latest.otp_code}")
    # A finished order keeps answering its code: the buyer paid for it (D3).
    return text(f"STATUS_OK:{latest.otp_code}")


def get_status_v2(request: KeyedRequest) -> HttpResponse:
    order, messages = _read(request)
    if _dead(order):
        return text("STATUS_CANCEL")
    sms = None
    if messages:
        latest = messages[-1]
        sms = {
            "dateTime": protocol_time(latest.sms.received_at),
            "code": latest.otp_code,
            "text": latest.sms.text,
        }
    return as_json({"verificationType": 0, "sms": sms, "call": None})


def get_full_sms(request: KeyedRequest) -> HttpResponse:
    order, messages = _read(request)
    if _dead(order):
        return text("STATUS_CANCEL")
    if not messages:
        return text("STATUS_WAIT_CODE")
    # Some clients read the answer line by line: one line.
    return text("FULL_SMS:" + " ".join(messages[-1].sms.text.splitlines()))


# --- setStatus -------------------------------------------------------------------------------


def _refusal(found: tuple[Order, list[OrderMessage]] | None) -> str:
    """The word for an activation that cannot take the status asked for."""
    if found is None:
        return "NO_ACTIVATION"
    return "STATUS_CANCEL" if _dead(found[0]) else "BAD_STATUS"


def _ready(request: KeyedRequest, order_id: int) -> str:
    found = order_and_messages(request.user, order_id)
    if found is not None and found[0].effective_status in OPEN_STATUSES:
        return "ACCESS_READY"
    return _refusal(found)


def _another_sms(request: KeyedRequest, order_id: int) -> str:
    services.order_another_sms(buyer=request.user, order_id=order_id)
    return "ACCESS_RETRY_GET"


def _finish(request: KeyedRequest, order_id: int) -> str:
    services.order_finish(buyer=request.user, order_id=order_id)
    return "ACCESS_ACTIVATION"


def _cancel(request: KeyedRequest, order_id: int) -> str:
    try:
        services.order_cancel(buyer=request.user, order_id=order_id)
    except errors.InvalidState:
        found = order_and_messages(request.user, order_id)
        if found is not None and found[0].effective_status == OrderStatus.EXPIRED:
            return "ACCESS_CANCEL"  # no SMS came in time: its expiry refunds it
        raise
    return "ACCESS_CANCEL"


_STATUSES: dict[str, Callable[[KeyedRequest, int], str]] = {
    "1": _ready,
    "3": _another_sms,
    "6": _finish,
    "8": _cancel,
    "-1": _cancel,
}


def set_status(request: KeyedRequest) -> HttpResponse:
    order_id = _activation(request)
    change = _STATUSES.get(parameter(request, "status").strip())
    if change is None:
        return text("BAD_STATUS")
    try:
        return text(change(request, order_id))
    except errors.NotFound:
        return text("NO_ACTIVATION")
    except errors.InvalidState:
        return text(_refusal(order_and_messages(request.user, order_id)))


# --- The catalogue and the account -----------------------------------------------------


def get_balance(request: KeyedRequest) -> HttpResponse:
    return text(f"ACCESS_BALANCE:{wallet_balance(request.user)}")


def _codes() -> dict[int, str]:
    """The protocol code of each application with a price, by id."""
    return {offer.application_id: offer.service_code for offer in service_offers()}


def _offered(entry: dict[str, Any]) -> tuple[int, int, dict[str, Any]] | None:
    """A catalogue entry's (cost, count, pool): the pool getNumber would take now (the
    cheapest with stock, else the cheapest) and its price, and the free numbers of all
    pools."""
    pools = sorted(entry["operators"].values(), key=lambda pool: (pool["price"], pool["stock"]))
    if not pools:
        return None
    pool = next((pool for pool in pools if pool["stock"] > 0), pools[0])
    return pool["price"], sum(pool["stock"] for pool in pools), pool


def get_prices(request: KeyedRequest) -> HttpResponse:
    if not _our_country(request):
        return as_json({})
    service = parameter(request, "service").strip()
    codes = _codes()
    prices = {}
    for entry in services_catalogue():
        code = codes.get(entry["id"])
        offered = _offered(entry)
        if code is None or offered is None or (service and service not in (code, entry["code"])):
            continue
        cost, count, pool = offered
        prices[code] = {"cost": cost, "count": count}
        if pool["success_rate"] is not None:
            # 5sim's name and scale: the share of the pool's orders of the last 24 hours
            # that received an SMS, in percent; absent below the minimum sample.
            prices[code]["rate"] = round(pool["success_rate"] * 100, 1)
    return as_json({str(settings.ACTIVATION_COUNTRY): prices} if prices or not service else {})


def get_numbers_status(request: KeyedRequest) -> HttpResponse:
    """`{"wa_0": 12}`: free numbers per service (the suffix: 0, no call forwarding)."""
    if not _our_country(request):
        return as_json({})
    offers = service_offers()  # one read, for the codes and the carrier's stock alike
    codes = {offer.application_id: offer.service_code for offer in offers}
    carrier = _carriers(request)[0]
    if carrier is None:
        counts = {
            entry["id"]: offered[1]
            for entry in services_catalogue()
            if (offered := _offered(entry)) is not None
        }
    else:
        stock = stock_counts.stock(carrier)
        counts = {
            offer.application_id: sum(stock(offer.application_id, pool) for pool, _ in offer.prices)
            for offer in offers
        }
    return as_json({f"{codes[app]}_0": count for app, count in counts.items() if app in codes})


def get_countries(request: KeyedRequest) -> HttpResponse:
    country = settings.ACTIVATION_COUNTRY
    rus, eng, chn = COUNTRY_NAMES.get(country, (str(country),) * 3)
    return as_json(
        {
            str(country): {
                "id": country,
                "rus": rus,
                "eng": eng,
                "chn": chn,
                "visible": 1,
                "retry": 1,
                "rent": 0,
                "multiService": 0,
            }
        }
    )


def get_operators(request: KeyedRequest) -> HttpResponse:
    if not _our_country(request):
        return text("OPERATORS_NOT_FOUND")
    orderable = Modem.objects.online().filter(
        can_order=True, disabled=False, phone_number__isnull=False
    )
    carriers = sorted(set(orderable.exclude(carrier="").values_list("carrier", flat=True)))
    return as_json(
        {"status": "success", "countryOperators": {str(settings.ACTIVATION_COUNTRY): carriers}}
    )


def get_services_list(request: KeyedRequest) -> HttpResponse:
    services_list = [{"code": offer.service_code, "name": offer.name} for offer in service_offers()]
    return as_json({"status": "success", "services": services_list})


def get_active_activations(request: KeyedRequest) -> HttpResponse:
    """The buyer's open orders, newest first, in the protocol's object (D1: its shape, not
    the bare list one library wants)."""
    codes = _codes()
    orders = (
        orders_of(request.user)
        .filter(status__in=OPEN_STATUSES, expires_at__gt=timezone.now())
        .order_by("-id")[:ACTIVE_ACTIVATIONS_MAX]
    )
    country = str(settings.ACTIVATION_COUNTRY)
    activations = []
    for order in orders:
        messages = list(order.messages.all())
        activations.append(
            {
                "activationId": str(order.pk),
                "serviceCode": codes.get(order.application_id, ""),
                "phoneNumber": order.phone_number,
                "activationCost": str(order.price),
                "activationStatus": "4",
                "smsCode": [m.otp_code for m in messages] or None,
                "smsText": messages[-1].sms.text if messages else None,
                "activationTime": protocol_time(order.created_at),
                "discount": "0",
                "repeated": "0",
                "countryCode": country,
                "countryName": COUNTRY_NAMES.get(settings.ACTIVATION_COUNTRY, (country,) * 3)[1],
                "canGetAnotherSms": "1",
            }
        )
    return as_json({"status": "success", "activeActivations": activations})


ACTIONS: dict[str, Callable[[KeyedRequest], HttpResponse]] = {
    "getBalance": get_balance,
    "getBalanceAndCashBack": get_balance,  # no cashback here: the same answer
    "getNumber": get_number,
    "getNumberV2": get_number_v2,
    "getStatus": get_status,
    "getStatusV2": get_status_v2,
    "getFullSms": get_full_sms,
    "setStatus": set_status,
    "getPrices": get_prices,
    "getNumbersStatus": get_numbers_status,
    "getCountries": get_countries,
    "getOperators": get_operators,
    "getServicesList": get_services_list,
    "getActiveActivations": get_active_activations,
}


# --- The endpoint ----------------------------------------------------------------------------


class AnyAccept(DefaultContentNegotiation):
    """Bots send any Accept header (or none); the answer is what the protocol says."""

    def select_renderer(
        self, request: Any, renderers: Any, format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class HandlerApiView(KeyedView):
    """GET or POST `/stubs/handler_api.php?api_key=...&action=...`; parameters in the query
    string or a form body, unknown ones ignored."""

    schema = None  # a text protocol: docs/SMS-ACTIVATE.md documents it, not the OpenAPI schema
    authentication_classes = [ApiKeyParameterAuthentication]
    parser_classes = [FormParser, MultiPartParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AnyAccept

    def get(self, request: KeyedRequest) -> HttpResponse:
        action = ACTIONS.get(parameter(request, "action"))
        if action is None:
            return text("BAD_ACTION")
        try:
            return action(request)
        except Answer as answer:
            return text(answer.word)

    post = get

    # DRF's stubs say Response; any HttpResponse is what DRF itself accepts here.
    def handle_exception(self, exc: Exception) -> HttpResponse:  # type: ignore[override]
        """What DRF and the services raise outside an action's own words."""
        if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            return text("BAD_KEY" if parameter(self.request, "api_key").strip() else "NO_KEY")
        if isinstance(exc, exceptions.PermissionDenied):
            return text("BANNED")  # a disabled account
        if isinstance(exc, errors.RateLimited):
            # The transport's limit, not a protocol answer: 429 as everywhere on the API.
            answer = HttpResponse("TOO_MANY_REQUESTS", status=429, content_type=TEXT)
            answer["Retry-After"] = str(exc.retry_after or 1)
            return answer
        if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
            return text("BAD_ACTION")
        if isinstance(exc, OperationalError | InterfaceError):
            # The database is briefly unreachable: the protocol's word for it, nothing written.
            log.error("database unavailable: %s", exc)
            return text("ERROR_SQL")
        if isinstance(exc, exceptions.APIException):  # a method other than GET and POST
            return HttpResponse("BAD_ACTION", status=exc.status_code, content_type=TEXT)
        # A bug: logged under the request id, and a word every client knows as an error.
        log.exception("sms-activate %s failed", parameter(self.request, "action")[:40])
        return HttpResponse("ERROR_SQL", status=500, content_type=TEXT)
