"""Reads for the dashboard pages: active orders, the wallet's ledger, a reseller's modems,
earnings and inbound SMS, how each number delivers, and the staff overview.

They live with orders because orders stands on every other app: a modem's "orders served"
and a ledger line's "order #12" are order knowledge that modems and billing must not have.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import BooleanField, Count, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiKey, User
from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from billing.services import platform_balance, wallet_balance
from modems.models import InboundSms, Modem
from orders.models import (
    OPEN_STATUSES,
    Application,
    CallbackDelivery,
    NumberRecord,
    Order,
    OrderStatus,
)
from orders.selectors import orders_of, services_catalogue
from orders.statements import free_modems

_ORDER_REFERENCE = re.compile(r"^order:(\d+):")


def live_key(user: User, kind: str) -> ApiKey | None:
    """The user's working key of that kind (shown masked), or None."""
    return ApiKey.objects.filter(user=user, kind=kind, revoked_at__isnull=True).first()


def active_orders(buyer: User) -> list[Order]:
    """Orders the buyer can still act on: pending, or completed and not past expires_at
    (more SMS may still arrive for those), newest first."""
    return list(
        orders_of(buyer)
        .filter(status__in=OPEN_STATUSES, expires_at__gt=timezone.now())
        .select_related("application")
        .order_by("-id")
    )


def order_history(buyer: User, status: str | None = None) -> QuerySet[Order]:
    """Every order of the buyer, newest first, filtered by the status the API shows."""
    return orders_of(buyer, status or None).select_related("application").order_by("-id")


@dataclass(frozen=True)
class OperatorOffer:
    operator: str
    price: int
    stock: int
    # The last 24 hours (orders/statements/deliverability.py); None below the sample.
    success_rate: float | None = None
    median_seconds_to_sms: int | None = None

    @property
    def success_percent(self) -> int | None:
        return None if self.success_rate is None else round(self.success_rate * 100)


@dataclass(frozen=True)
class CatalogueEntry:
    id: int
    name: str
    offers: list[OperatorOffer]

    @property
    def initials(self) -> str:
        """The badge's letters: the capitals of "WhatsApp" or "Bigo Live", else the first."""
        capitals = [c for c in self.name if c.isupper() or c.isdigit()]
        return "".join(capitals[:2]) if len(capitals) >= 2 else self.name[:1].upper()

    @property
    def hue(self) -> int:
        """The badge's colour, the same for an application everywhere."""
        return self.id * 137 % 360

    @property
    def cheapest(self) -> int | None:
        return min((o.price for o in self.offers), default=None)

    @property
    def stock(self) -> int:
        return sum(o.stock for o in self.offers)

    def offer(self, operator: str) -> OperatorOffer | None:
        return next((o for o in self.offers if o.operator == operator), None)


_OPERATOR_ORDER = {"normal": 0, "promo": 1, "special": 2}


def catalogue(*, refresh: bool = False) -> list[CatalogueEntry]:
    """The public catalogue (prices and physical stock per operator) in a shape templates
    can loop over; `refresh` as in services_catalogue."""
    return [
        CatalogueEntry(
            id=app["id"],
            name=app["name"],
            offers=sorted(
                (
                    OperatorOffer(
                        operator=op,
                        price=o["price"],
                        stock=o["stock"],
                        success_rate=o["success_rate"],
                        median_seconds_to_sms=o["median_seconds_to_sms"],
                    )
                    for op, o in app["operators"].items()
                ),
                key=lambda offer: _OPERATOR_ORDER.get(offer.operator, 9),
            ),
        )
        for app in services_catalogue(refresh=refresh)
    ]


# Favourites come from the newest orders only: one index range read (orders_buyer_idx),
# whatever the length of the buyer's history.
FAVOURITES_FROM_ORDERS = 50
FAVOURITES = 5


def favourite_applications(buyer: User) -> list[int]:
    """The applications of the buyer's latest orders, most recently used first."""
    newest = Order.objects.filter(buyer=buyer).order_by("-id")
    used = newest.values_list("application_id", flat=True)[:FAVOURITES_FROM_ORDERS]
    return list(dict.fromkeys(used))[:FAVOURITES]


def price_list(
    entries: list[CatalogueEntry], favourites: list[int], query: str = ""
) -> list[CatalogueEntry]:
    """The order form's applications: favourites first, then the catalogue's order;
    only those whose name contains `query` (the search box without JavaScript)."""
    rank = {app_id: n for n, app_id in enumerate(favourites)}
    needle = query.strip().casefold()
    return sorted(
        (app for app in entries if needle in app.name.casefold()),
        key=lambda app: rank.get(app.id, len(rank)),
    )


@dataclass(frozen=True)
class OrderBlock:
    """Why the order form's Buy button is off; `shortfall` is the top-up it needs."""

    reason: str  # "no_price", "out_of_stock" or "balance"
    shortfall: int = 0


def order_block(offer: OperatorOffer | None, balance: int) -> OrderBlock | None:
    """Why an order of this pool cannot succeed now, or None. A convenience for the form:
    order_create checks all of it again (the figures here may be a second old)."""
    if offer is None:
        return OrderBlock("no_price")
    if not offer.stock:
        return OrderBlock("out_of_stock")
    if balance < offer.price:
        return OrderBlock("balance", offer.price - balance)
    return None


@dataclass(frozen=True)
class WalletLine:
    at: datetime
    kind: str
    label: str
    memo: str
    order_id: int | None
    amount: int
    balance_after: int


_LINE_LABELS: dict[str, Promise] = {
    LedgerTransaction.Kind.TOPUP: _("Top-up"),
    LedgerTransaction.Kind.HOLD: _("Number ordered"),
    LedgerTransaction.Kind.RELEASE: _("Refund"),
    LedgerTransaction.Kind.CAPTURE: _("Earnings"),
    LedgerTransaction.Kind.WITHDRAWAL: _("Withdrawal"),
    LedgerTransaction.Kind.WITHDRAWAL_RETURN: _("Withdrawal returned"),
    LedgerTransaction.Kind.ADJUSTMENT: _("Adjustment"),
}


def wallet_entries(user: User) -> QuerySet[LedgerEntry]:
    return (
        LedgerEntry.objects.filter(account__kind=LedgerAccount.Kind.WALLET, account__user=user)
        .select_related("transaction")
        .order_by("-id")
    )


def wallet_lines(user: User, entries: Sequence[LedgerEntry]) -> list[WalletLine]:
    """One page of the wallet's entries (newest first) with the balance after each.

    The balance after the newest entry on the page is today's balance minus every entry
    newer than it: one aggregate, whatever the page."""
    if not entries:
        return []
    newer = (
        wallet_entries(user).filter(id__gt=entries[0].pk).aggregate(total=Sum("amount"))["total"]
    )
    balance = wallet_balance(user) - (newer or 0)
    lines = []
    for entry in entries:
        tx = entry.transaction
        found = _ORDER_REFERENCE.match(tx.reference)
        lines.append(
            WalletLine(
                at=tx.created_at,
                kind=tx.kind,
                label=str(_LINE_LABELS.get(tx.kind, tx.kind)),
                memo=tx.memo,
                order_id=int(found.group(1)) if found else None,
                amount=entry.amount,
                balance_after=balance,
            )
        )
        balance -= entry.amount
    return lines


@dataclass(frozen=True)
class DayEarnings:
    day: date
    amount: int
    percent: int  # of the best day in the chart, for the bar's height


@dataclass(frozen=True)
class Earnings:
    today: int
    last_7_days: int
    last_30_days: int
    days: list[DayEarnings]


def reseller_earnings(reseller: User, days: int = 30) -> Earnings:
    """What the reseller's wallet received from captured orders, per day (UTC) for the
    last `days` days, today included."""
    today = timezone.now().date()
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    per_day = dict(
        LedgerEntry.objects.filter(
            account__kind=LedgerAccount.Kind.WALLET,
            account__user=reseller,
            transaction__kind=LedgerTransaction.Kind.CAPTURE,
            transaction__created_at__gte=start,
        )
        .annotate(day=TruncDate("transaction__created_at"))
        .values("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    series = [
        (first + timedelta(days=n), per_day.get(first + timedelta(days=n), 0)) for n in range(days)
    ]
    best = max((amount for _, amount in series), default=0) or 1
    return Earnings(
        today=per_day.get(today, 0),
        last_7_days=sum(amount for day, amount in series if day > today - timedelta(days=7)),
        last_30_days=sum(amount for _, amount in series),
        days=[DayEarnings(day, amount, amount * 100 // best) for day, amount in series],
    )


def reseller_modems(reseller: User) -> QuerySet[Modem]:
    """The reseller's modems with the orders each served (an SMS arrived) and what they
    earned the reseller."""
    served = Q(orders__reseller_share__isnull=False)
    return (
        Modem.objects.filter(reseller=reseller)
        .annotate(
            orders_served=Count("orders", filter=served),
            earned=Sum("orders__reseller_share", filter=served),
        )
        .order_by("uid")
    )


def inbound_sms(reseller: User, matched: bool | None = None) -> QuerySet[InboundSms]:
    """The reseller's inbound SMS, newest first, with the order each matched (if any)."""
    messages = (
        InboundSms.objects.filter(reseller=reseller)
        .select_related("modem", "match__order__application")
        .order_by("-id")
    )
    if matched is not None:
        messages = messages.filter(match__isnull=not matched)
    return messages


@dataclass(frozen=True)
class StaffOverview:
    orders_today: int
    completed_today: int
    revenue_today: int
    pending_orders: int
    escrow: int
    modems_online: int
    modems_total: int
    callbacks_failed: int
    callbacks_failed_today: int
    signups_today: int
    recent_failed_callbacks: list[CallbackDelivery]


def staff_overview() -> StaffOverview:
    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = Order.objects.filter(created_at__gte=midnight)
    revenue = LedgerEntry.objects.filter(
        account__kind=LedgerAccount.Kind.REVENUE, created_at__gte=midnight
    ).aggregate(total=Sum("amount"))["total"]
    # A test callback failing is the buyer trying their URL, not a delivery we failed.
    failed = CallbackDelivery.objects.filter(status=CallbackDelivery.Status.FAILED).exclude(
        event=CallbackDelivery.Event.TEST
    )
    return StaffOverview(
        orders_today=today.count(),
        completed_today=today.filter(completed_at__isnull=False).count(),
        revenue_today=revenue or 0,
        pending_orders=Order.objects.filter(status=OrderStatus.PENDING, expires_at__gt=now).count(),
        escrow=platform_balance(LedgerAccount.Kind.ESCROW),
        modems_online=Modem.objects.online().count(),
        modems_total=Modem.objects.count(),
        callbacks_failed=failed.count(),
        callbacks_failed_today=failed.filter(created_at__gte=midnight).count(),
        signups_today=User.objects.filter(date_joined__gte=midnight).count(),
        recent_failed_callbacks=list(failed.select_related("buyer").order_by("-id")[:10]),
    )


# --- How each number delivers (the reseller's and the staff's numbers pages) --------------


@dataclass(frozen=True)
class ApplicationRecord:
    application: str
    delivered: int
    failed: int
    failed_in_a_row: int
    resting_until: datetime | None  # None: not resting (the pick's own rule)

    @property
    def success_percent(self) -> int | None:
        decided = self.delivered + self.failed
        return round(100 * self.delivered / decided) if decided else None


@dataclass(frozen=True)
class NumberLine:
    modem: Modem
    overall: ApplicationRecord | None
    applications: list[ApplicationRecord]


def numbers_resting() -> QuerySet[NumberRecord]:
    """The records whose number rests now, by the pick's own rule (free_modems.resting)."""
    table = NumberRecord._meta.db_table
    since = timezone.now() - timedelta(seconds=settings.NUMBER_REST_SECONDS)
    rule = free_modems.resting(table, settings.NUMBER_REST_AFTER_FAILURES, "%s")
    now_resting = RawSQL(rule, [since], output_field=BooleanField())  # noqa: S611 (our SQL)
    return (
        NumberRecord.objects.exclude(application_id=0)
        .annotate(now_resting=now_resting)
        .filter(now_resting=True)
    )


def number_lines(modems: Sequence[Modem]) -> list[NumberLine]:
    """Each modem's number: its record for each application (resting ones, then the
    busiest, first), with when a rest ends, and their sum."""
    phones = [modem.phone_number for modem in modems if modem.phone_number]
    records = list(NumberRecord.objects.filter(phone_number__in=phones))
    resting = set(numbers_resting().filter(phone_number__in=phones).values_list("pk", flat=True))
    names = dict(
        Application.objects.filter(pk__in={r.application_id for r in records}).values_list(
            "pk", "name"
        )
    )
    rest = timedelta(seconds=settings.NUMBER_REST_SECONDS)
    by_phone: dict[str, list[NumberRecord]] = {}
    for record in records:
        by_phone.setdefault(record.phone_number, []).append(record)

    def line(record: NumberRecord) -> ApplicationRecord:
        until = None
        if record.pk in resting and record.last_failed_at is not None:
            until = record.last_failed_at + rest
        return ApplicationRecord(
            application=names.get(record.application_id, str(record.application_id)),
            delivered=record.delivered,
            failed=record.failed,
            failed_in_a_row=record.failed_in_a_row,
            resting_until=until,
        )

    lines = []
    for modem in modems:
        applications = sorted(
            (line(r) for r in by_phone.get(modem.phone_number or "", [])),
            key=lambda r: (-(r.resting_until is not None), -(r.delivered + r.failed)),
        )
        overall = None
        if applications:
            overall = ApplicationRecord(
                application=str(_("All applications")),
                delivered=sum(r.delivered for r in applications),
                failed=sum(r.failed for r in applications),
                failed_in_a_row=0,
                resting_until=None,
            )
        lines.append(NumberLine(modem=modem, overall=overall, applications=applications))
    return lines


def numbers_modems(reseller: User | None, resting_only: bool) -> QuerySet[Modem]:
    """The modems of the numbers pages: a reseller's (None: everyone's, for staff), with a
    number; only those resting from some application, if asked."""
    modems = Modem.objects.filter(phone_number__isnull=False).select_related("reseller")
    if reseller is not None:
        modems = modems.filter(reseller=reseller)
    if resting_only:
        # A list, not a subquery: the rule's SQL names the records' table, which a
        # subquery would alias.
        resting = set(numbers_resting().values_list("phone_number", flat=True))
        modems = modems.filter(phone_number__in=resting)
    return modems.order_by("reseller_id", "uid")
