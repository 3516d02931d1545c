"""Job-queue tasks: thin and safe to run twice."""

from orders.services import orders_expire


def expire_orders() -> int:
    """Expire and refund every pending order past its time (scheduled every minute)."""
    return orders_expire()
