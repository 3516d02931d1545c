"""The hot paths' statements, written out: ordering, cancelling, an inbound SMS.

Ordering a number and cancelling it are the requests bots send in bursts, and agents
report every SMS; built with the ORM, composing these queries cost more CPU than
PostgreSQL spent running them
(docs/PERFORMANCE.md). Each statement here is plain SQL that PostgreSQL and SQLite both
run (SQLite without the row locks, which it does not need: it has one writer at a time),
composed once from the models' table names. orders/services.py decides what the answers
mean, and its tests are the tests of these statements.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Model

from accounts.models import User
from billing import services as billing
from billing.models import LedgerAccount, LedgerTransaction
from modems.models import InboundSms, Modem, Operator
from orders.models import (
    OPEN_STATUSES,
    USED_STATUSES,
    Application,
    ApplicationPrice,
    Order,
    OrderStatus,
)
from zerotp.db import prepared

_ORDER = Order._meta.db_table
_OPEN = "('{}', '{}')".format(*OPEN_STATUSES)
_USED = "('{}', '{}')".format(*USED_STATUSES)  # also: the orders that received an SMS
_PENDING = f"'{OrderStatus.PENDING}'"


def _locking(clause: str) -> str:
    return f" {clause}" if connection.features.has_select_for_update else ""


def _db(moment: datetime) -> Any:
    """A datetime as the database stores it (SQLite: naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(moment)


def aware(moment: datetime | None) -> datetime | None:
    """A datetime from a raw cursor: SQLite hands them back naive (stored in UTC)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class OrderContext(NamedTuple):
    name: str
    enabled: bool
    price: int | None
    balance: int
    pending: int
    recent_closed: int
    recent_answered: int


# The buyer's wallet, row-locked until the order is made (so one buyer's concurrent
# orders queue here and each sees the others' holds and orders), with the application and
# its price for the operator, the buyer's pending orders and, when SCAN_GUARD is on, how
# many of their recent closed orders received an SMS.
_CONTEXT = f"""
SELECT a.name, a.enabled,
       (SELECT p.price FROM {ApplicationPrice._meta.db_table} p
        WHERE p.application_id = a.id AND p.operator = %(operator)s),
       w.balance,
       (SELECT COUNT(*) FROM {_ORDER} o
        WHERE o.buyer_id = %(buyer)s AND o.status = {_PENDING} AND o.expires_at > %(now)s)
       {{recent}}
FROM {Application._meta.db_table} a, {LedgerAccount._meta.db_table} w
WHERE a.id = %(application)s AND w.kind = '{LedgerAccount.Kind.WALLET}'
  AND w.user_id = %(buyer)s"""
_RECENT_ORDERS = (
    f"SELECT status FROM {_ORDER} WHERE buyer_id = %(buyer)s AND created_at >= %(since)s "
    f"AND status <> {_PENDING} ORDER BY id DESC LIMIT %(window)s"
)
_RECENT = (
    f", (SELECT COUNT(*) FROM ({_RECENT_ORDERS}) r)"
    f", (SELECT COUNT(*) FROM ({_RECENT_ORDERS}) r WHERE r.status IN {_USED})"
)


def order_context(
    *, buyer_id: int, application_id: int, operator: str, now: datetime, since: datetime
) -> OrderContext | None:
    """What deciding an order needs, in one query that also locks the wallet. None when the
    application or the buyer's wallet does not exist."""
    guard = settings.SCAN_GUARD
    sql = _CONTEXT.format(recent=_RECENT if guard else "") + _locking("FOR UPDATE OF w")
    params = {
        "buyer": buyer_id,
        "application": application_id,
        "operator": operator,
        "now": _db(now),
        "since": _db(since),
        "window": settings.SCAN_GUARD_ORDERS,
    }
    with connection.cursor() as cursor:
        cursor.execute(prepared(sql), params)
        row = cursor.fetchone()
    if row is None:
        return None
    return OrderContext(*row) if guard else OrderContext(*row, 0, 0)


# The order, inserted on the first free modem for the application and operator (API.md,
# "Stock rules"): orderable, holding no open order for the application (by modem, and by
# number: a number moved to another modem takes its open order with it), and whose number
# never served the application. Modems other transactions hold are skipped, not waited
# for. No row back when the partial unique constraint on open (application, modem) orders
# refuses it: under READ COMMITTED, another transaction committed an order on that modem
# after this statement's snapshot; the next statement's snapshot sees it.
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
#
# Each NOT EXISTS ends in OFFSET 0, which keeps it a per-modem index probe: the statement
# is prepared, and the generic plan PostgreSQL settles on otherwise turns them into
# anti-joins that read every open order of every application (6 ms instead of 0.3 ms;
# PERFORMANCE.md).
_FENCE = "OFFSET 0" if connection.vendor == "postgresql" else ""
_FREE_MODEMS = f"""
FROM {Modem._meta.db_table} m
WHERE m.mapping = {{operator}} AND m.can_order AND NOT m.disabled
  AND m.phone_number IS NOT NULL AND m.last_heartbeat_at >= {{online_since}}
  AND NOT EXISTS (SELECT 1 FROM {_ORDER} o WHERE o.application_id = %(application)s
                  AND o.modem_id = m.id AND o.status IN {_OPEN} {_FENCE})
  AND NOT EXISTS (SELECT 1 FROM {_ORDER} o WHERE o.phone_number = m.phone_number
                  AND o.application_id = %(application)s AND o.status IN {_OPEN} {_FENCE})
  AND NOT EXISTS (SELECT 1 FROM {_ORDER} u WHERE u.phone_number = m.phone_number
                  AND u.application_id = %(application)s AND u.status IN {_USED} {_FENCE})"""


@cache
def _free_modems(operator: str, online_seconds: int) -> str:
    """FROM and WHERE of the operator's free modems.

    On PostgreSQL the operator and the online window are written into the text rather
    than bound (one statement per operator): the plan PostgreSQL prepares once for all
    parameter values then estimates them as it does when planning for the values at hand,
    finds it no worse, and keeps it instead of planning the order statement again at every
    order, which cost more than running it (PERFORMANCE.md). statement_timestamp() is
    the time the statement began, which is after the caller's `now`."""
    if not _POSTGRES or operator not in Operator.values:
        return _FREE_MODEMS.format(operator="%(operator)s", online_since="%(online_since)s")
    window = f"statement_timestamp() - interval '{int(online_seconds)} seconds'"
    return _FREE_MODEMS.format(operator=f"'{operator}'", online_since=window)


def _order_on_free_modem_sql(
    operator: str, online_seconds: int, *, price: str, only_if: str = "", locking: str = ""
) -> str:
    """INSERT ... SELECT of a pending order on the first free modem; `price` is the SQL
    for its price, `only_if` a further condition on inserting at all."""
    return f"""
INSERT INTO {_ORDER} ({", ".join(_ORDER_COLUMNS)})
SELECT %(buyer)s, %(application)s, m.mapping, m.id, m.reseller_id, m.phone_number,
       {price}, %(custom_user_id)s, {_PENDING}, %(now)s, %(expires_at)s
{_free_modems(operator, online_seconds)}
  {only_if}
ORDER BY m.id LIMIT 1{locking}
ON CONFLICT DO NOTHING
RETURNING id, modem_id, reseller_id, phone_number, price"""


class _Wanted(NamedTuple):
    """An order as asked for: what both ways of inserting it bind, and the Order they
    return."""

    buyer_id: int
    application_id: int
    operator: str
    custom_user_id: str | None
    now: datetime
    expires_at: datetime
    online_since: datetime

    def params(self) -> dict[str, Any]:
        return {
            "buyer": self.buyer_id,
            "application": self.application_id,
            "operator": self.operator,
            "custom_user_id": self.custom_user_id,
            "now": _db(self.now),
            "expires_at": _db(self.expires_at),
            "online_since": _db(self.online_since),
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


class Placed(NamedTuple):
    order: Order | None  # None: the modem picked was taken meanwhile; try again
    held: bool = False  # the price is in escrow already (PostgreSQL: the same statement)


# On PostgreSQL the money an order operation moves is booked by the statement that changes
# the order (billing.movement_ctes), and that statement checks its own ledger outcome: the
# cancel needs no transaction around it. Elsewhere the service books it afterwards, inside
# its transaction.
_POSTGRES = connection.vendor == "postgresql"
MOVES_MONEY_ITSELF = _POSTGRES


def _first_row(
    sql: str, params: dict[str, Any], movement: billing.Movement | None
) -> tuple[Any, ...] | None:
    """Run the statement, inside the movement's statement when there is one."""
    if movement is not None:
        return movement.run(movement.statement(sql), params | movement.params)
    with connection.cursor() as cursor:
        cursor.execute(prepared(sql), params)
        return cursor.fetchone()


def _order_reference(cte: str, step: str) -> str:
    """The SQL for `order:<id>:<step>`, the order's id read from a CTE."""
    return f"'order:' || (SELECT id FROM {cte}) || ':{step}'"


def order_on_free_modem(
    *,
    buyer_id: int,
    application_id: int,
    operator: str,
    price: int,
    custom_user_id: str | None,
    now: datetime,
    expires_at: datetime,
    online_since: datetime,
) -> Placed | None:
    """Insert a pending order on a free modem, row-locked; on PostgreSQL the same
    statement also holds the price (`billing.hold`). None: no modem is free."""
    wanted = _Wanted(
        buyer_id, application_id, operator, custom_user_id, now, expires_at, online_since
    )
    sql = _on_free_modem_insert(operator, settings.MODEM_ONLINE_SECONDS)
    params = wanted.params() | {"price": price}
    movement = None
    if _POSTGRES:
        movement = billing.movement_ctes(
            kind=LedgerTransaction.Kind.HOLD,
            legs=billing.hold_legs(buyer_id, price),
            reference="order:<new>:hold",
            reference_sql=_order_reference("placed", "hold"),
            gate="placed",
        )
    row = _first_row(sql, params, movement)
    if row is not None and row[0] is not None:
        return Placed(wanted.order(row), held=movement is not None)
    # Nothing inserted: out of stock, or the pick lost a race (rare). Which?
    with connection.cursor() as cursor:
        free = _free_modems(operator, settings.MODEM_ONLINE_SECONDS)
        cursor.execute(f"SELECT 1 {free} LIMIT 1", params)
        return Placed(None) if cursor.fetchone() is not None else None


@cache
def _on_free_modem_insert(operator: str, online_seconds: int) -> str:
    return _order_on_free_modem_sql(
        operator,
        online_seconds,
        price="%(price)s",
        locking=_locking("FOR UPDATE OF m SKIP LOCKED"),
    )


# The order made in one statement, with no transaction around it (PostgreSQL): what
# `order_context`, `order_on_free_modem` and the hold do in a transaction, for the order
# that succeeds. The wallet is locked first (FOR UPDATE); its version as this statement's
# snapshot saw it must be the version locked, i.e. no money moved on it since the snapshot
# was taken. Then every order of the buyer that moved money (a new order holds, a cancel
# or an expiry refunds) is in the snapshot, and the pending count read from it is exact.
# Anything else (another request changed the wallet meanwhile, or any check fails) writes
# nothing: the service then runs the transaction, which also says which error it is.
_AT_ONCE_CHECKS = f"""seen AS (
    SELECT xmin AS version FROM {LedgerAccount._meta.db_table}
    WHERE kind = '{LedgerAccount.Kind.WALLET}' AND user_id = %(buyer)s
), wallet AS (
    SELECT xmin AS version, balance FROM {LedgerAccount._meta.db_table}
    WHERE kind = '{LedgerAccount.Kind.WALLET}' AND user_id = %(buyer)s FOR UPDATE
), decided AS (
    SELECT p.price FROM wallet, seen, {Application._meta.db_table} a
    JOIN {ApplicationPrice._meta.db_table} p
      ON p.application_id = a.id AND p.operator = %(operator)s
    WHERE a.id = %(application)s AND a.enabled AND wallet.version = seen.version
      AND wallet.balance >= p.price
      AND (SELECT COUNT(*) FROM {_ORDER} o WHERE o.buyer_id = %(buyer)s
           AND o.status = {_PENDING} AND o.expires_at > %(now)s) < %(max_active)s
      {{not_scanning}}
)"""


@cache
def _at_once_insert(operator: str, online_seconds: int) -> str:
    return _order_on_free_modem_sql(
        operator,
        online_seconds,
        price="(SELECT price FROM decided)",
        only_if="AND EXISTS (SELECT FROM decided)",
        locking=" FOR UPDATE OF m SKIP LOCKED",
    )


_NOT_SCANNING = (
    f"AND NOT ((SELECT COUNT(*) FROM ({_RECENT_ORDERS}) r) >= %(window)s AND "
    f"(SELECT COUNT(*) FROM ({_RECENT_ORDERS}) r WHERE r.status IN {_USED}) * 100 < "
    f"(SELECT COUNT(*) FROM ({_RECENT_ORDERS}) r) * %(min_percent)s)"
)


def order_at_once(
    *,
    buyer_id: int,
    application_id: int,
    operator: str,
    custom_user_id: str | None,
    now: datetime,
    expires_at: datetime,
    online_since: datetime,
    since: datetime,
) -> Order | None:
    """The new order, its price held, in one statement (PostgreSQL only); None if this
    statement could not decide it alone, having written nothing."""
    movement = billing.movement_ctes(
        kind=LedgerTransaction.Kind.HOLD,
        legs=billing.hold_legs(buyer_id, 1),
        reference="order:<new>:hold",
        reference_sql=_order_reference("placed", "hold"),
        gate="placed",
        scale_sql="(SELECT price FROM placed)",
    )
    checks = _AT_ONCE_CHECKS.format(not_scanning=_NOT_SCANNING if settings.SCAN_GUARD else "")
    sql = movement.statement(
        _at_once_insert(operator, settings.MODEM_ONLINE_SECONDS), leading=checks
    )
    wanted = _Wanted(
        buyer_id, application_id, operator, custom_user_id, now, expires_at, online_since
    )
    params = (
        movement.params
        | wanted.params()
        | {
            "since": _db(since),
            "max_active": settings.MAX_ACTIVE_ORDERS,
            "window": settings.SCAN_GUARD_ORDERS,
            "min_percent": settings.SCAN_GUARD_MIN_SMS_PERCENT,
        }
    )
    row = movement.run(sql, params)
    if row is None or row[0] is None:
        return None
    return wanted.order(row)


# A cancel that won: the order was the buyer's, pending and not yet past its time.
_CANCEL = (
    f"UPDATE {_ORDER} SET status = '{OrderStatus.CANCELLED}', closed_at = %(now)s "
    f"WHERE id = %(order)s AND buyer_id = %(buyer)s AND status = {_PENDING} "
    "AND expires_at > %(now)s RETURNING " + ", ".join(f.column for f in Order._meta.concrete_fields)
)


class Cancelled(NamedTuple):
    order: Order
    released: bool  # the price is back in the wallet already (PostgreSQL: same statement)


def cancel_pending(*, order_id: int, buyer_id: int, now: datetime) -> Cancelled | None:
    """Mark the buyer's pending order cancelled and, on PostgreSQL in the same statement,
    release its price (`billing.release`); that statement is atomic by itself. None if it
    was not the buyer's pending order (then nothing changed)."""
    sql, params = _CANCEL, {"now": _db(now), "order": order_id, "buyer": buyer_id}
    movement = None
    if _POSTGRES:
        # Legs of 1 rupiah scaled by the price only the UPDATE reads.
        movement = billing.movement_ctes(
            kind=LedgerTransaction.Kind.RELEASE,
            legs=billing.release_legs(buyer_id, 1),
            reference=f"order:{order_id}:release",
            reference_sql=_order_reference("cancelled", "release"),
            gate="cancelled",
            scale_sql="(SELECT price FROM cancelled)",
        )
    row = _first_row(sql, params, movement)
    if row is None or row[0] is None:
        return None
    width = len(_ORDER_FIELDS)
    return Cancelled(_loaded(Order, _ORDER_FIELDS, row[:width]), released=movement is not None)


_ORDER_FIELDS = [f.attname for f in Order._meta.concrete_fields]


def _loaded(model: type[Model], names: Sequence[str], values: Sequence[Any]) -> Any:
    """A model instance from a raw row, as the ORM would load it (fields not named are
    deferred: read from the database if ever used)."""
    values = [aware(v) if isinstance(v, datetime) else v for v in values]
    return model.from_db(connection.alias, list(names), values)


# --- inbound SMS ---------------------------------------------------------------------------

_SMS = InboundSms._meta.db_table
_LOCK_MODEM = (
    f"SELECT id, phone_number FROM {Modem._meta.db_table} WHERE reseller_id = %s AND uid = %s"
)


def lock_modem(*, reseller_id: int, uid: str) -> tuple[int, str | None] | None:
    """(id, phone number) of the reseller's modem, row-locked: one modem's SMS queue here."""
    with connection.cursor() as cursor:
        cursor.execute(prepared(_LOCK_MODEM + _locking("FOR UPDATE")), [reseller_id, uid])
        return cursor.fetchone()


_DUPLICATE = (
    f"SELECT id FROM {_SMS} WHERE (modem_id = %s AND sender = %s AND text = %s "
    "AND created_at >= %s){by_message_id} ORDER BY id LIMIT 1"
)


def duplicate_sms(
    *,
    modem_id: int,
    reseller_id: int,
    sender: str,
    text: str,
    message_id: str | None,
    since: datetime,
) -> int | None:
    """The id of the SMS this one repeats: the same text from the same sender on the modem
    since `since`, or the same message_id from the reseller."""
    params: list[Any] = [modem_id, sender, text, _db(since)]
    by_message_id = ""
    if message_id:
        by_message_id = " OR (reseller_id = %s AND message_id = %s)"
        params += [reseller_id, message_id]
    with connection.cursor() as cursor:
        cursor.execute(prepared(_DUPLICATE.format(by_message_id=by_message_id)), params)
        row = cursor.fetchone()
    return row[0] if row else None


_APPLICATION_FIELDS = ["id", "sender_patterns", "otp_pattern"]
_BUYER_FIELDS = ["id", "callback_enabled", "callback_url"]
_OPEN_ON_LINE = (
    "SELECT "
    + ", ".join(
        [f"o.{name}" for name in _ORDER_FIELDS]
        + [f"a.{name}" for name in _APPLICATION_FIELDS]
        + [f"b.{name}" for name in _BUYER_FIELDS]
    )
    + f"""
FROM {_ORDER} o
JOIN {Application._meta.db_table} a ON a.id = o.application_id
JOIN {User._meta.db_table} b ON b.id = o.buyer_id
WHERE o.{{line}} = %s AND o.status IN {_OPEN} AND o.expires_at > %s AND o.created_at <= %s"""
)


def open_orders_on_line(
    *, modem_id: int, phone_number: str | None, now: datetime, received_at: datetime
) -> list[Order]:
    """The open orders an SMS on this line may be for, with their application's patterns
    and their buyer's callback settings. The line is the number (its open orders follow
    it from modem to modem); a modem whose number is unknown only has its own orders."""
    line, value = ("phone_number", phone_number) if phone_number else ("modem_id", modem_id)
    with connection.cursor() as cursor:
        sql = prepared(_OPEN_ON_LINE.format(line=line))
        cursor.execute(sql, [value, _db(now), _db(received_at)])
        rows = cursor.fetchall()
    orders = []
    ends = (len(_ORDER_FIELDS), len(_ORDER_FIELDS) + len(_APPLICATION_FIELDS))
    for row in rows:
        order = _loaded(Order, _ORDER_FIELDS, row[: ends[0]])
        order.application = _loaded(Application, _APPLICATION_FIELDS, row[ends[0] : ends[1]])
        order.buyer = _loaded(User, _BUYER_FIELDS, row[ends[1] :])
        orders.append(order)
    return orders


_SMS_COLUMNS = (
    "modem_id",
    "reseller_id",
    "phone_number",
    "sender",
    "text",
    "message_id",
    "received_at",
    "created_at",
    "otp_code",
)
_INSERT_SMS = (
    f"INSERT INTO {_SMS} ({', '.join(_SMS_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(_SMS_COLUMNS))}) ON CONFLICT DO NOTHING RETURNING id"
)


def insert_sms(**values: Any) -> InboundSms | None:
    """The stored SMS; None if the reseller's message_id is taken already."""
    row = [values[column] for column in _SMS_COLUMNS]
    row[6:8] = [_db(values["received_at"]), _db(values["created_at"])]
    with connection.cursor() as cursor:
        cursor.execute(prepared(_INSERT_SMS), row)
        inserted = cursor.fetchone()
    if inserted is None:
        return None
    return _loaded(
        InboundSms, ["id", *_SMS_COLUMNS], [inserted[0], *(values[c] for c in _SMS_COLUMNS)]
    )


_COMPLETE = (
    f"UPDATE {_ORDER} SET status = '{OrderStatus.COMPLETED}', completed_at = %s, "
    "reseller_share = %s, otp_code = %s, sms_text = %s "
    f"WHERE id = %s AND status = {_PENDING} AND expires_at > %s"
)


def complete_pending(*, order_id: int, share: int, otp: str, text: str, now: datetime) -> bool:
    """Complete the pending order with its first code; False if it is no longer pending
    or its time is up."""
    stamp = _db(now)
    with connection.cursor() as cursor:
        cursor.execute(prepared(_COMPLETE), [stamp, share, otp, text, order_id, stamp])
        return cursor.rowcount == 1
