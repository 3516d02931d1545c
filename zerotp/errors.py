"""Domain errors, one per code of the public contract (API.md, "Errors").

Services raise these; the API's exception handler turns them into the JSON envelope
`{"error": {"code": ..., "message": ...}}` with the right status. They derive from DRF's
APIException only so that DRF lets them through its authentication step unchanged.
"""

from collections.abc import Mapping
from typing import Any

from rest_framework import exceptions

from zerotp.text import printable


class DomainError(exceptions.APIException):
    status_code = 400
    code = "invalid_request"
    default_detail = "Invalid request."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.message = message or str(self.default_detail)
        self.fields = fields
        self.retry_after = retry_after
        super().__init__(self.message, self.code)


class InvalidRequest(DomainError):
    pass


class InvalidApiKey(DomainError, exceptions.AuthenticationFailed):
    status_code = 401
    code = "invalid_api_key"
    default_detail = "Missing, unknown or revoked X-API-KEY."


class InvalidAgentKey(DomainError, exceptions.AuthenticationFailed):
    status_code = 401
    code = "invalid_agent_key"
    default_detail = "Missing, unknown or revoked X-AGENT-KEY."


class InsufficientBalance(DomainError):
    status_code = 402
    code = "insufficient_balance"
    default_detail = "Balance is below the price."


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
    default_detail = "This account may not do that."


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_detail = "Not found."


class OutOfStock(DomainError):
    status_code = 409
    code = "out_of_stock"
    default_detail = "No number is available for that application and operator right now."


class InvalidState(DomainError):
    status_code = 409
    code = "invalid_state"
    default_detail = "The order is not in a state that allows this."


class PhoneNumberConflict(DomainError):
    status_code = 409
    code = "phone_number_conflict"
    default_detail = "Another reseller's modem holds this phone number."


class IdempotencyConflict(DomainError):
    status_code = 409
    code = "idempotency_conflict"
    default_detail = "This Idempotency-Key was used with another request body."


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "The request body or batch is too large."


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"
    default_detail = "Too many requests."


class TooManyActiveOrders(DomainError):
    status_code = 429
    code = "too_many_active_orders"
    default_detail = "Too many pending orders."


def error_body(code: str, message: str, fields: Mapping[str, list[str]] | None = None) -> dict:
    # Messages may quote the input, and input may hold what UTF-8 cannot encode.
    error: dict[str, Any] = {"code": code, "message": printable(message)}
    if fields:
        error["fields"] = {printable(k): [printable(m) for m in v] for k, v in fields.items()}
    return {"error": error}
