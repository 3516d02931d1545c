"""An inbound SMS: its modem, locked; the SMS it repeats; the open orders it may be for;
its row; the order it completes."""

from datetime import datetime
from typing import Any

from django.db import connection

from accounts.models import User
from modems.models import InboundSms, Modem
from orders.models import Application, Order, OrderStatus
from orders.statements.common import (
    OPEN,
    ORDER,
    ORDER_FIELDS,
    PENDING,
    as_stored,
    loaded,
    row_lock,
)
from zerotp.db import prepared

_SMS = InboundSms._meta.db_table
_LOCK_MODEM = (
    f"SELECT id, phone_number FROM {Modem._meta.db_table} WHERE reseller_id = %s AND uid = %s"
)


def lock_modem(*, reseller_id: int, uid: str) -> tuple[int, str | None] | None:
    """(id, phone number) of the reseller's modem, row-locked: one modem's SMS queue here."""
    with connection.cursor() as cursor:
        cursor.execute(prepared(_LOCK_MODEM + row_lock("FOR UPDATE")), [reseller_id, uid])
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
    params: list[Any] = [modem_id, sender, text, as_stored(since)]
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
        [f"o.{name}" for name in ORDER_FIELDS]
        + [f"a.{name}" for name in _APPLICATION_FIELDS]
        + [f"b.{name}" for name in _BUYER_FIELDS]
    )
    + f"""
FROM {ORDER} o
JOIN {Application._meta.db_table} a ON a.id = o.application_id
JOIN {User._meta.db_table} b ON b.id = o.buyer_id
WHERE o.{{line}} = %s AND o.status IN {OPEN} AND o.expires_at > %s AND o.created_at <= %s"""
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
        cursor.execute(sql, [value, as_stored(now), as_stored(received_at)])
        rows = cursor.fetchall()
    orders = []
    ends = (len(ORDER_FIELDS), len(ORDER_FIELDS) + len(_APPLICATION_FIELDS))
    for row in rows:
        order = loaded(Order, ORDER_FIELDS, row[: ends[0]])
        order.application = loaded(Application, _APPLICATION_FIELDS, row[ends[0] : ends[1]])
        order.buyer = loaded(User, _BUYER_FIELDS, row[ends[1] :])
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
    row[6:8] = [as_stored(values["received_at"]), as_stored(values["created_at"])]
    with connection.cursor() as cursor:
        cursor.execute(prepared(_INSERT_SMS), row)
        inserted = cursor.fetchone()
    if inserted is None:
        return None
    return loaded(
        InboundSms, ["id", *_SMS_COLUMNS], [inserted[0], *(values[c] for c in _SMS_COLUMNS)]
    )


_COMPLETE = (
    f"UPDATE {ORDER} SET status = '{OrderStatus.COMPLETED}', completed_at = %s, "
    "reseller_share = %s, otp_code = %s, sms_text = %s "
    f"WHERE id = %s AND status = {PENDING} AND expires_at > %s"
)


def complete_pending(*, order_id: int, share: int, otp: str, text: str, now: datetime) -> bool:
    """Complete the pending order with its first code; False if it is no longer pending
    or its time is up."""
    stamp = as_stored(now)
    with connection.cursor() as cursor:
        cursor.execute(prepared(_COMPLETE), [stamp, share, otp, text, order_id, stamp])
        return cursor.rowcount == 1
