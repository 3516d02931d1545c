"""Reads that need thought: the catalogue with its stock, the orders an agent's numbers
are waiting on, a buyer's orders and callbacks."""

import math
import time
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import (
    F,
    Prefetch,
    Q,
    QuerySet,
)
from django.utils import timezone

from accounts.models import User
from modems.models import InboundSms, Operator
from orders.models import (
    OPEN_STATUSES,
    Application,
    ApplicationPrice,
    CallbackAttempt,
    CallbackDelivery,
    Order,
    OrderMessage,
    OrderStatus,
)
from orders.statements import deliverability, stock_counts
from orders.statements.common import aware, column_of
from zerotp.db import prepared

CATALOGUE_CACHE_KEY = "orders:services-catalogue:v2"  # (computed at, catalogue)
CATALOGUE_REFRESH_KEY = "orders:services-catalogue:refreshing"
_clock = time.time  # the catalogue copy's age; tests move it


def services_catalogue(*, refresh: bool = False) -> list[dict[str, Any]]:
    """Every enabled application with price and physical stock per operator, cached for
    CATALOGUE_CACHE_SECONDS (a couple of seconds).

    When the copy is due, one worker computes the next while the others go on answering
    with it, rather than all of them computing the same catalogue at once (a few
    milliseconds: the stock is read from its kept counts). So an answer is at most
    CATALOGUE_CACHE_SECONDS old plus the time one computation takes; should that one fail
    or hang, the copy expires at twice CATALOGUE_CACHE_SECONDS and whoever asks next
    computes it.

    `refresh` computes a new copy now and shares it: the order form after the buyer's own
    order must count it (issue 18). Refreshing rather than deleting the copy keeps every
    other worker answering with a copy meanwhile, instead of all computing at once."""
    ttl = settings.CATALOGUE_CACHE_SECONDS
    if not ttl:
        return _catalogue_now()
    if refresh:
        started = _clock()
        catalogue = _catalogue_now()
        cache.set(CATALOGUE_CACHE_KEY, (started, catalogue), timeout=2 * ttl)
        return catalogue
    entry = cache.get(CATALOGUE_CACHE_KEY)
    if entry is not None:
        computed_at, catalogue = entry
        if _clock() - computed_at < ttl:
            return catalogue
        if not cache.add(CATALOGUE_REFRESH_KEY, True, timeout=ttl):
            return catalogue  # another worker is computing the next copy
    started = _clock()
    try:
        catalogue = _catalogue_now()
        cache.set(CATALOGUE_CACHE_KEY, (started, catalogue), timeout=2 * ttl)
    finally:
        cache.delete(CATALOGUE_REFRESH_KEY)
    return catalogue


def _delivery_fields(windows: dict[str, deliverability.Window] | None) -> dict[str, Any]:
    """A pool's deliverability: the last 24 hours' at the top, both windows below."""
    windows = windows or {name: deliverability.empty() for name in deliverability.WINDOWS}
    day = windows["24h"]
    return {
        "success_rate": day.success_rate,
        "median_seconds_to_sms": day.median_seconds_to_sms,
        "deliverability": {name: window.as_json() for name, window in windows.items()},
    }


def _catalogue_now() -> list[dict[str, Any]]:
    stock = stock_counts.stock()
    delivery = deliverability.figures()
    applications = Application.objects.filter(enabled=True).prefetch_related(
        Prefetch("prices", queryset=ApplicationPrice.objects.order_by("operator"))
    )
    catalogue = []
    for app in applications:
        operators = {
            p.operator: {
                "price": p.price,
                "stock": stock(app.id, p.operator),
                **_delivery_fields(delivery.get((app.id, p.operator))),
            }
            for p in app.prices.all()
        }
        normal = operators.get("normal", {})
        catalogue.append(
            {
                "id": app.id,
                "name": app.name,
                "code": app.code,
                "price": normal.get("price"),
                "stock": normal.get("stock", 0),
                "operators": operators,
            }
        )
    return catalogue


class ServiceOffer(NamedTuple):
    """An application as the sms-activate dialect orders it: its priced operator pools,
    cheapest first (ties in the pools' order)."""

    application_id: int
    name: str
    service_code: str  # its protocol code, or its slug when it has none
    prices: tuple[tuple[str, int], ...]  # (operator, price)


# (loaded at, offers by protocol code and by slug), kept by each process.
_offers: tuple[float, dict[str, ServiceOffer]] = (-math.inf, {})


def service_offer(code: str) -> ServiceOffer | None:
    """The application a protocol service code (or slug) names, from a copy each process
    keeps for CATALOGUE_CACHE_SECONDS, so that ordering by code costs the query the REST
    order by id does. A copy a bit old costs nothing wrong: the order statement reads the
    price and checks the application itself. A code not in the copy reloads it."""
    global _offers
    loaded_at, offers = _offers
    if code in offers and _clock() - loaded_at < settings.CATALOGUE_CACHE_SECONDS:
        return offers[code]
    _offers = (_clock(), _load_offers())
    return _offers[1].get(code)


def service_offers() -> list[ServiceOffer]:
    """Every enabled application with a price, by id: a fresh read."""
    return sorted(set(_load_offers().values()), key=lambda offer: offer.application_id)


def _load_offers() -> dict[str, ServiceOffer]:
    rank = {operator: index for index, operator in enumerate(Operator.values)}
    applications = (
        Application.objects.filter(enabled=True).prefetch_related("prices").order_by("id")
    )
    offers: dict[str, ServiceOffer] = {}
    for app in applications:
        prices = sorted(
            ((p.operator, p.price) for p in app.prices.all()),
            key=lambda pool: (pool[1], rank.get(pool[0], len(rank))),
        )
        if not prices:
            continue
        offer = ServiceOffer(app.pk, app.name, app.service_code or app.code, tuple(prices))
        offers.setdefault(app.code, offer)
        if app.service_code:
            offers[app.service_code] = offer  # a protocol code wins over a slug alike
    return offers


OPEN_ORDERS_MAX = 1000


class OpenOrder(TypedDict):
    """A row of open_orders_on_modems_of."""

    phone_number: str
    application_id: int
    operator: str
    created_at: datetime
    expires_at: datetime
    order_id: int
    uid: str
    application_name: str


def open_orders_on_modems_of(reseller: User) -> list[OpenOrder]:
    """The pending orders on the reseller's modems that may still get their SMS (not past
    expires_at), oldest first, at most OPEN_ORDERS_MAX: which number waits for which
    application. One query; read through the modems, as everything a reseller served is."""
    return list(
        Order.objects.filter(
            modem__reseller=reseller, status=OrderStatus.PENDING, expires_at__gt=timezone.now()
        )
        .order_by("created_at", "id")
        .values(
            "phone_number",
            "application_id",
            "operator",
            "created_at",
            "expires_at",
            order_id=F("id"),
            uid=F("modem__uid"),
            application_name=F("application__name"),
        )[:OPEN_ORDERS_MAX]
    )


def orders_of(buyer: User, status: str | None = None) -> QuerySet[Order]:
    orders = Order.objects.filter(buyer=buyer).prefetch_related(
        Prefetch("messages", queryset=OrderMessage.objects.select_related("sms"))
    )
    if status:
        orders = orders.filter(_effective_status_is(status))
    return orders


def _effective_status_is(status: str) -> Q:
    """The filter for a status as the API shows it (the clock, not the job, decides)."""
    now = timezone.now()
    if status in OPEN_STATUSES:
        return Q(status=status, expires_at__gt=now)
    closed_from: dict[str, str] = {
        OrderStatus.EXPIRED: OrderStatus.PENDING,
        OrderStatus.FINISHED: OrderStatus.COMPLETED,
    }
    if status in closed_from:
        return Q(status=status) | Q(status=closed_from[status], expires_at__lte=now)
    return Q(status=status)


def order_of(buyer: User, order_id: int) -> Order | None:
    return orders_of(buyer).filter(pk=order_id).first()


_ORDER_COLUMNS = [(f.attname, column_of(f)) for f in Order._meta.concrete_fields]
_ORDER_DATETIMES = {
    f.attname for f in Order._meta.concrete_fields if f.get_internal_type() == "DateTimeField"
}
# Written out rather than built by the ORM: this is the read buyers poll, and building the
# query cost more than running it (PERFORMANCE.md).
_ORDER_READ_SQL = (
    "SELECT "
    + ", ".join(f"o.{connection.ops.quote_name(column)}" for _, column in _ORDER_COLUMNS)
    + f""", m.id, m.otp_code, s.sender, s.text, s.received_at
FROM {Order._meta.db_table} o
LEFT JOIN {OrderMessage._meta.db_table} m ON m.order_id = o.id
LEFT JOIN {InboundSms._meta.db_table} s ON s.id = m.sms_id
WHERE o.id = %s AND o.buyer_id = %s
ORDER BY m.id"""
)


def order_and_messages(buyer: User, order_id: int) -> tuple[Order, list[OrderMessage]] | None:
    """The buyer's order and its messages (oldest first) in one query: the order joined to
    its messages and their SMS, one row per message."""
    with connection.cursor() as cursor:
        cursor.execute(prepared(_ORDER_READ_SQL), [order_id, buyer.pk])
        rows = cursor.fetchall()
    if not rows:
        return None
    width = len(_ORDER_COLUMNS)
    fields = {
        name: aware(value) if name in _ORDER_DATETIMES else value
        for (name, _), value in zip(_ORDER_COLUMNS, rows[0][:width], strict=True)
    }
    order = Order(**fields)
    order._state.adding, order._state.db = False, connection.alias
    messages = [
        OrderMessage(
            id=message_id,
            order=order,
            otp_code=otp_code,
            sms=InboundSms(sender=sender, text=text, received_at=aware(received_at)),
        )
        for message_id, otp_code, sender, text, received_at in (row[width:] for row in rows)
        if message_id is not None
    ]
    return order, messages


def deliveries_of(
    buyer: User, order_id: int | None = None, status: str | None = None
) -> QuerySet[CallbackDelivery]:
    """The buyer's callback log with each delivery's attempts (newest first) prefetched."""
    deliveries = CallbackDelivery.objects.filter(buyer=buyer).prefetch_related(
        Prefetch("attempt_log", queryset=CallbackAttempt.objects.order_by("-id"))
    )
    if order_id is not None:
        deliveries = deliveries.filter(order_id=order_id)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries
