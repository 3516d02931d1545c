"""Reads that need thought: which modems are free, the catalogue with its stock."""

from typing import Any

from django.db.models import (
    Exists,
    Expression,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from modems.models import Modem
from orders.models import (
    OPEN_STATUSES,
    USED_STATUSES,
    Application,
    ApplicationPrice,
    CallbackAttempt,
    CallbackDelivery,
    Order,
    OrderMessage,
    OrderStatus,
)


def free_modems(application: Any, operator: Any) -> QuerySet[Modem]:
    """Modems that could be handed out for the application and operator this second
    (API.md, "Stock rules"). Both arguments may be values or outer references."""
    busy = Order.objects.filter(
        modem=OuterRef("pk"), application=application, status__in=OPEN_STATUSES
    )
    used = Order.objects.filter(
        application=application, phone_number=OuterRef("phone_number"), status__in=USED_STATUSES
    )
    return Modem.objects.orderable(operator).exclude(Exists(busy)).exclude(Exists(used))


class SubqueryCount(Subquery):
    """The number of rows a (possibly sliced) subquery returns."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) _counted)"
    output_field = IntegerField()


class SubqueryCountAnswered(SubqueryCount):
    """The number of orders, among those a subquery of `status` values returns, that
    received an SMS."""

    template = (
        "(SELECT COUNT(*) FROM (%(subquery)s) _counted WHERE _counted.status IN "
        f"('{OrderStatus.COMPLETED}', '{OrderStatus.FINISHED}'))"
    )


def _stock(application: Expression, operator: Expression) -> Coalesce:
    return Coalesce(SubqueryCount(free_modems(application, operator).values("pk")), 0)


def services_catalogue() -> list[dict[str, Any]]:
    """Every enabled application with price and physical stock per operator: two queries
    however many applications there are."""
    prices = ApplicationPrice.objects.annotate(
        stock=_stock(OuterRef(OuterRef("application_id")), OuterRef("operator"))
    ).order_by("operator")
    applications = Application.objects.filter(enabled=True).prefetch_related(
        Prefetch("prices", queryset=prices)
    )
    catalogue = []
    for app in applications:
        operators = {p.operator: {"price": p.price, "stock": p.stock} for p in app.prices.all()}
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
    closed_from = {
        OrderStatus.EXPIRED: OrderStatus.PENDING,
        OrderStatus.FINISHED: OrderStatus.COMPLETED,
    }
    if status in closed_from:
        return Q(status=status) | Q(status=closed_from[status], expires_at__lte=now)
    return Q(status=status)


def order_of(buyer: User, order_id: int) -> Order | None:
    return orders_of(buyer).filter(pk=order_id).first()


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
