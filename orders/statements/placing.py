"""Placing an order: what deciding it reads, the checks it must pass, the order on a free
modem, and on PostgreSQL all of it with the hold in one statement."""

import itertools
import random
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection

from billing import services as billing
from billing.models import LedgerAccount
from orders.models import Application, ApplicationPrice, Order, OrderStatus
from orders.statements.common import ORDER, PENDING, USED, as_stored, row_lock
from orders.statements.free_modems import MODEM, free_modems, pick
from zerotp.db import prepared

_WALLETS = f"{LedgerAccount._meta.db_table} WHERE kind = '{LedgerAccount.Kind.WALLET}'"

# The buyer's last closed orders within the scan guard's window, newest first.
_RECENT_ORDERS = (
    f"SELECT status FROM {ORDER} WHERE buyer_id = %(buyer)s AND created_at >= %(since)s "
    f"AND status <> {PENDING} ORDER BY id DESC LIMIT %(window)s"
)


def _context(source: str, scan_guard: bool) -> str:
    """What deciding an order reads, as one row, from `source`: the application `a` and
    the buyer's wallet `w` (its balance). The pending orders count those not yet past
    their time; the recent ones (only read when the scan guard is on) are the closed
    orders of `_RECENT_ORDERS` and how many of them received an SMS."""
    recent = (
        f"(SELECT COUNT(*) FROM ({_RECENT_ORDERS}) r) AS recent_closed, "
        f"(SELECT COUNT(*) FROM ({_RECENT_ORDERS}) r WHERE r.status IN {USED}) AS recent_answered"
        if scan_guard
        else "0 AS recent_closed, 0 AS recent_answered"
    )
    return f"""SELECT a.name, a.enabled,
       (SELECT p.price FROM {ApplicationPrice._meta.db_table} p
        WHERE p.application_id = a.id AND p.operator = %(operator)s) AS price,
       w.balance,
       (SELECT COUNT(*) FROM {ORDER} o WHERE o.buyer_id = %(buyer)s
        AND o.status = {PENDING} AND o.expires_at > %(now)s) AS pending,
       {recent}
FROM {source}"""


class Check(NamedTuple):
    """A condition an order must meet, in SQL over the context's columns (true: go on)."""

    name: str
    sql: str


# Every check, in the order the contract gives their errors (orders/services.py words them).
CHECKS = (
    Check("priced", "price IS NOT NULL"),
    Check("enabled", "enabled"),
    Check("under_limit", "pending < %(max_active)s"),
    Check(
        "not_scanning",  # many recent orders, almost none with an SMS: numbers being probed
        "NOT (recent_closed >= %(window)s "
        "AND recent_answered * 100 < recent_closed * %(min_percent)s)",
    ),
    # No REST twin: the sms-activate dialect's maxPrice (NULL: any price).
    Check("within_max_price", "price <= COALESCE(%(max_price)s, price)"),
    Check("affordable", "balance >= price"),
)


class OrderContext(NamedTuple):
    name: str
    enabled: bool
    price: int | None
    balance: int
    pending: int
    recent_closed: int
    recent_answered: int
    passed: dict[str, bool]  # each check's name: whether the order meets it


# The columns `_context` selects, by the names OrderContext gives them.
_CONTEXT_COLUMNS = OrderContext._fields[:-1]


def _check_params() -> dict[str, Any]:
    return {
        "max_active": settings.MAX_ACTIVE_ORDERS,
        "window": settings.SCAN_GUARD_ORDERS,
        "min_percent": settings.SCAN_GUARD_MIN_SMS_PERCENT,
    }


# Locks the buyer's wallet (PostgreSQL; SQLite runs one writer at a time). A statement's
# snapshot is taken before it waits for a lock, so what decides an order is read by the
# statement after this one: counted in the locking statement, the buyer's orders that
# committed while it waited would be missed (a burst of one key's orders then passed
# MAX_ACTIVE_ORDERS: tests/orders/test_races.py).
_LOCK_WALLET = f"SELECT 1 FROM {_WALLETS} AND user_id = %(buyer)s FOR UPDATE"


@cache
def _context_sql(scan_guard: bool) -> str:
    source = (
        f"{Application._meta.db_table} a, {LedgerAccount._meta.db_table} w "
        f"WHERE a.id = %(application)s AND w.kind = '{LedgerAccount.Kind.WALLET}' "
        "AND w.user_id = %(buyer)s"
    )
    checks = ", ".join(check.sql for check in CHECKS)
    columns = ", ".join(_CONTEXT_COLUMNS)
    return f"SELECT {columns}, {checks} FROM ({_context(source, scan_guard)}) AS context"


def order_context(
    *,
    buyer_id: int,
    application_id: int,
    operator: str,
    now: datetime,
    since: datetime,
    max_price: int | None = None,
) -> OrderContext | None:
    """What deciding an order reads and which checks it passes, once the buyer's wallet is
    locked (one buyer's orders queue there, each seeing the others' holds). None when the
    application or the buyer's wallet does not exist."""
    sql = _context_sql(settings.SCAN_GUARD)
    params = _check_params() | {
        "buyer": buyer_id,
        "application": application_id,
        "operator": operator,
        "now": as_stored(now),
        "since": as_stored(since),
        "max_price": max_price,
    }
    with connection.cursor() as cursor:
        if connection.features.has_select_for_update:
            cursor.execute(prepared(_LOCK_WALLET), {"buyer": buyer_id})
        cursor.execute(prepared(sql), params)
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(_CONTEXT_COLUMNS)
    passed = {check.name: bool(ok) for check, ok in zip(CHECKS, row[width:], strict=True)}
    name, enabled, price, balance, pending, recent_closed, recent_answered = row[:width]
    return OrderContext(
        name=name,
        enabled=enabled,
        price=price,
        balance=balance,
        pending=pending,
        recent_closed=recent_closed,
        recent_answered=recent_answered,
        passed=passed,
    )


# The order's columns, as both ways of inserting it write them.
_ORDER_COLUMNS = (
    "buyer_id",
    "application_id",
    "operator",
    "modem_id",
    "reseller_id",
    "phone_number",
    "price",
    "custom_user_id",
    "status",
    "created_at",
    "expires_at",
)


class Routing(NamedTuple):
    """The settings the pick is written with (they are in its text, see `free_modems`)."""

    online_seconds: int
    rest: tuple[int, int]  # NUMBER_REST_AFTER_FAILURES, NUMBER_REST_SECONDS
    candidates: int  # ROUTING_CANDIDATES

    @classmethod
    def now(cls) -> "Routing":
        return cls(
            settings.MODEM_ONLINE_SECONDS,
            (settings.NUMBER_REST_AFTER_FAILURES, settings.NUMBER_REST_SECONDS),
            settings.ROUTING_CANDIDATES,
        )


def _insert_on_free_modem(
    operator: str,
    routing: Routing,
    by_carrier: bool,
    *,
    price: str,
    only_if: str = "",
    locking: str = "",
) -> str:
    """INSERT ... SELECT of a pending order on the modem `pick` gives; `price` is the SQL
    for its price, `only_if` a further condition on inserting at all. No row back when the
    partial unique constraint on open (application, modem) orders refuses it: under READ
    COMMITTED, another transaction committed an order on that modem after this statement's
    snapshot; the next statement's snapshot sees it."""
    return f"""
INSERT INTO {ORDER} ({", ".join(_ORDER_COLUMNS)})
SELECT %(buyer)s, %(application)s, m.mapping, m.id, m.reseller_id, m.phone_number,
       {price}, %(custom_user_id)s, {PENDING}, %(now)s, %(expires_at)s
FROM {MODEM} m
WHERE true {only_if}
  AND m.id = {pick(operator, *routing, by_carrier=by_carrier, locking=locking)}
ON CONFLICT DO NOTHING
RETURNING id, modem_id, reseller_id, phone_number, price"""


# Where successive orders start among the modems' ids (free_modems.pick): the multiples of
# the golden ratio's fraction, which fall evenly over [0, 1) however many are taken, so
# every modem soon comes first in some order's candidates (random points would leave some
# untried for long by chance). Each process starts at its own random point.
_GOLDEN = (5**0.5 - 1) / 2
_starts = itertools.count(random.randrange(1_000_000))


def next_start() -> float:
    return next(_starts) * _GOLDEN % 1.0


class OrderWanted(NamedTuple):
    """An order as the buyer asked for it and the clock set it: what both ways of
    inserting it bind, and the Order they return."""

    buyer_id: int
    application_id: int
    operator: str
    custom_user_id: str | None
    now: datetime
    expires_at: datetime
    online_since: datetime
    rest_since: datetime | None = None  # a rest that began before this is over
    carrier: str | None = None  # only modems of this mobile carrier (modems.carriers)
    max_price: int | None = None  # refuse a price above it
    start: float = 0.0  # where among the modems' ids the pick starts (a fraction)
    explore: bool = False  # take the first candidate, not the best (free_modems.pick)

    def params(self) -> dict[str, Any]:
        return {
            "buyer": self.buyer_id,
            "application": self.application_id,
            "operator": self.operator,
            "custom_user_id": self.custom_user_id,
            "now": as_stored(self.now),
            "expires_at": as_stored(self.expires_at),
            "online_since": as_stored(self.online_since),
            "rest_since": as_stored(self.rest_since) if self.rest_since else None,
            "start": self.start,
            "explore": self.explore,
            "carrier": self.carrier,
            "max_price": self.max_price,
        }

    def order(self, row: Sequence[Any]) -> Order:
        """The order the INSERT returned, as Order.objects.create() leaves it: the
        columns not set hold their defaults."""
        order_id, modem_id, reseller_id, phone_number, price = row[:5]
        order = Order(
            id=order_id,
            modem_id=modem_id,
            reseller_id=reseller_id,
            phone_number=phone_number,
            price=price,
            status=OrderStatus.PENDING,
            buyer_id=self.buyer_id,
            application_id=self.application_id,
            operator=self.operator,
            custom_user_id=self.custom_user_id,
            created_at=self.now,
            expires_at=self.expires_at,
        )
        order._state.adding, order._state.db = False, connection.alias
        return order


# The new order's row, which the hold booked in the same statement reads.
_PLACED = billing.WrittenRow(cte="placed", amount_column="price", prefix="order:", suffix=":hold")


class Placed(NamedTuple):
    order: Order | None  # None: the modem picked was taken meanwhile; try again
    price_held: bool = False  # the hold is booked already (the same statement booked it)


@cache
def _pick_sql(operator: str, routing: Routing, by_carrier: bool, locking: str) -> str:
    return _insert_on_free_modem(operator, routing, by_carrier, price="%(price)s", locking=locking)


def order_on_free_modem(
    wanted: OrderWanted, *, price: int, hold_in_same_statement: bool
) -> Placed | None:
    """Insert a pending order on a free modem, skipping modems other transactions hold;
    with `hold_in_same_statement` (PostgreSQL) the statement also holds the price. None:
    no modem is free."""
    routing = Routing.now()
    sql = _pick_sql(
        wanted.operator,
        routing,
        wanted.carrier is not None,
        row_lock("FOR UPDATE OF m SKIP LOCKED"),
    )
    params = wanted.params() | {"price": price}
    if hold_in_same_statement:
        movement = billing.hold_for(_PLACED, wanted.buyer_id)
        row = movement.run(movement.statement(sql), params | movement.params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(prepared(sql), params)
            row = cursor.fetchone()
    if row is not None and row[0] is not None:
        return Placed(wanted.order(row), price_held=hold_in_same_statement)
    # Nothing inserted: out of stock, or the pick lost a race (rare). Which?
    with connection.cursor() as cursor:
        free = free_modems(
            wanted.operator, routing.online_seconds, routing.rest, wanted.carrier is not None
        )
        cursor.execute(f"SELECT 1 {free} LIMIT 1", params)
        return Placed(None) if cursor.fetchone() is not None else None


# The order made in one statement, with no transaction around it (PostgreSQL): what
# `order_context`, `order_on_free_modem` and the hold do in a transaction, for the order
# that succeeds. It runs right after `_LOCK_WALLET`, pipelined with it (one round trip, one
# transaction): its snapshot is taken once the buyer's wallet is locked, so every order of
# the buyer that moved money is in it and the pending count read from it is exact, however
# many of the buyer's orders queued on the wallet meanwhile. A check that fails writes
# nothing: the service then runs the transaction, which says which error.
@cache
def _at_once_sql(operator: str, routing: Routing, by_carrier: bool, scan_guard: bool) -> str:
    source = f"{Application._meta.db_table} a, w WHERE a.id = %(application)s"
    checks = " AND ".join(check.sql for check in CHECKS)
    # FOR UPDATE again: a no-op on the wallet `_LOCK_WALLET` locked, and the lock on one a
    # top-up created since (a buyer's first); its balance is then the latest either way.
    leading = f"""w AS (
    SELECT balance FROM {_WALLETS} AND user_id = %(buyer)s FOR UPDATE
), decided AS (
    SELECT price FROM ({_context(source, scan_guard)}) AS context WHERE {checks}
)"""
    insert = _insert_on_free_modem(
        operator,
        routing,
        by_carrier,
        price="(SELECT price FROM decided)",
        only_if="AND EXISTS (SELECT FROM decided)",
        locking=" FOR UPDATE OF m SKIP LOCKED",
    )
    movement = billing.hold_for(_PLACED, 0)
    return movement.statement(insert, leading=leading)


def order_at_once(wanted: OrderWanted, *, since: datetime) -> Order | None:
    """The new order, its price held, in one statement after the wallet's lock, both sent
    at once (PostgreSQL only); None if this statement could not decide it alone, having
    written nothing."""
    sql = _at_once_sql(
        wanted.operator, Routing.now(), wanted.carrier is not None, settings.SCAN_GUARD
    )
    movement = billing.hold_for(_PLACED, wanted.buyer_id)
    params = movement.params | wanted.params() | _check_params() | {"since": as_stored(since)}
    row = movement.run(sql, params, first=(_LOCK_WALLET, {"buyer": wanted.buyer_id}))
    if row is None or row[0] is None:
        return None
    return wanted.order(row)
