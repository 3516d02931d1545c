"""Cancelling a pending order, with its refund in the same statement on PostgreSQL."""

from datetime import datetime
from typing import NamedTuple

from django.db import connection

from billing import services as billing
from orders.models import Order, OrderStatus
from orders.statements.common import (
    ORDER,
    ORDER_FIELDS,
    PENDING,
    as_stored,
    column_of,
    loaded,
)
from zerotp.db import prepared

# A cancel that won: the order was the buyer's, pending and not yet past its time.
_CANCEL = (
    f"UPDATE {ORDER} SET status = '{OrderStatus.CANCELLED}', closed_at = %(now)s "
    f"WHERE id = %(order)s AND buyer_id = %(buyer)s AND status = {PENDING} "
    "AND expires_at > %(now)s RETURNING "
    + ", ".join(column_of(f) for f in Order._meta.concrete_fields)
)
# The cancelled order's row, which the refund booked in the same statement reads.
_CANCELLED = billing.WrittenRow(
    cte="cancelled", amount_column="price", prefix="order:", suffix=":release"
)


class Cancelled(NamedTuple):
    order: Order
    price_released: bool  # the refund is booked already (the same statement booked it)


def cancel_pending(
    *, order_id: int, buyer_id: int, now: datetime, release_in_same_statement: bool
) -> Cancelled | None:
    """Mark the buyer's pending order cancelled and, with `release_in_same_statement`
    (PostgreSQL), refund its price in the same statement, which is atomic by itself. None
    if it was not the buyer's pending order (then nothing changed)."""
    params = {"now": as_stored(now), "order": order_id, "buyer": buyer_id}
    if release_in_same_statement:
        movement = billing.release_for(_CANCELLED, buyer_id)
        row = movement.run(movement.statement(_CANCEL), params | movement.params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(prepared(_CANCEL), params)
            row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    order = loaded(Order, ORDER_FIELDS, row[: len(ORDER_FIELDS)])
    return Cancelled(order, price_released=release_in_same_statement)
