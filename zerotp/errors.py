"""Domain errors, one per code of the public contract (docs/API.md, "Errors").

Plain exceptions: services raise them, whatever called the service decides what they
look like. The API's one exception handler (zerotp/api.py) gives each code its HTTP status
and the JSON envelope `{"error": {"code": ..., "message": ...}}`; the dashboard shows the
message; a management command prints it.
"""

from collections.abc import Mapping
from typing import Any

from zerotp.text import printable


class DomainError(Exception):
    code = "invalid_request"
    default_message = "Invalid request."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.fields = fields
        self.retry_after = retry_after  # seconds after which trying again may succeed
        super().__init__(self.message)


class InvalidRequest(DomainError):
    pass


class InsufficientBalance(DomainError):
    code = "insufficient_balance"
    default_message = "Balance is below the price."

    def __init__(
        self, message: str | None = None, *, balance: int | None = None, price: int | None = None
    ) -> None:
        super().__init__(message)
        # The amounts, for a page to write its own way (the API's message keeps the
        # contract's plain figures: "Balance 1000 is below the price 3500.").
        self.balance, self.price = balance, price


class Forbidden(DomainError):
    code = "forbidden"
    default_message = "This account may not do that."


class NotFound(DomainError):
    code = "not_found"
    default_message = "Not found."


class OutOfStock(DomainError):
    code = "out_of_stock"
    default_message = "No number is available for that application and operator right now."


class InvalidState(DomainError):
    code = "invalid_state"
    default_message = "The order is not in a state that allows this."


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"
    default_message = "This Idempotency-Key was used with another request body."


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    default_message = "The request body or batch is too large."


class PriceAboveMax(DomainError):
    """The price is above the highest the buyer asked for (the sms-activate dialect's
    maxPrice; the REST API has no such limit)."""

    code = "price_above_max"
    default_message = "The price is above the highest price asked."

    def __init__(self, message: str | None = None, *, price: int) -> None:
        super().__init__(message)
        self.price = price


class PaymentUnavailable(DomainError):
    """The payment provider could not be reached, or answered nonsense."""

    code = "payment_unavailable"
    default_message = "The payment provider is unavailable; try again shortly."


class RateLimited(DomainError):
    code = "rate_limited"
    default_message = "Too many requests."


class TooManyActiveOrders(DomainError):
    code = "too_many_active_orders"
    default_message = "Too many pending orders."


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict:
    # Messages may quote the input, and input may hold what UTF-8 cannot encode.
    error: dict[str, Any] = {"code": code, "message": printable(message)}
    if fields:
        error["fields"] = {printable(k): [printable(m) for m in v] for k, v in fields.items()}
    return {"error": error}
