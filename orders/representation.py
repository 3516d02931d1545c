"""Orders as the API shows them (docs/API.md, "POST /api/v1/orders")."""

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from orders.models import Order, OrderMessage
from zerotp.times import iso

if TYPE_CHECKING:
    from orders.selectors import OpenOrder


def message_data(message: OrderMessage) -> dict[str, Any]:
    return {
        "from": message.sms.sender,
        "text": message.sms.text,
        "otp_code": message.otp_code,
        "received_at": iso(message.sms.received_at),
    }


def order_data(order: Order, messages: Iterable[OrderMessage] | None = None) -> dict[str, Any]:
    """The order object; `messages` defaults to the prefetched or stored ones, oldest first."""
    if messages is None:
        messages = order.messages.all()
    return {
        "order_id": order.pk,
        "status": order.effective_status,
        "phone_number": order.phone_number,
        "application_id": order.application_id,
        "operator": order.operator,
        "price": order.price,
        "custom_user_id": order.custom_user_id,
        "otp_code": order.otp_code,
        "sms_text": order.sms_text,
        "messages": [message_data(m) for m in messages],
        "created_at": iso(order.created_at),
        "expires_at": iso(order.expires_at),
    }


def new_order_json(order: Order) -> str:
    """The answer to `POST /api/v1/orders` as sent, in the API's compact UTF-8 JSON: what
    an `Idempotency-Key` remembers and a retry gets back byte for byte."""
    return json.dumps(order_data(order, messages=[]), ensure_ascii=False, separators=(",", ":"))


def open_order_data(row: "OpenOrder") -> dict[str, Any]:
    """A row of selectors.open_orders_on_modems_of as the agent API shows it."""
    return {
        "order_id": row["order_id"],
        "uid": row["uid"],
        "phone_number": row["phone_number"],
        "application_id": row["application_id"],
        "application": row["application_name"],
        "operator": row["operator"],
        "created_at": iso(row["created_at"]),
        "expires_at": iso(row["expires_at"]),
    }
