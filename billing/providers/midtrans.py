"""Midtrans Snap: one hosted page with QRIS, virtual accounts and e-wallets.

Spoken with `requests` rather than the official `midtransclient`: we need two calls
(create a Snap transaction, read a transaction's status) and one check (the notification's
signature), and midtransclient fixes its base URLs inside the library, while tests (and a
proxy in production) point MIDTRANS_SNAP_URL / MIDTRANS_API_URL elsewhere.

Requests and answers as Midtrans documents them:
- create: `POST {SNAP}/snap/v1/transactions`, HTTP Basic with the server key as user,
  `{"transaction_details": {"order_id", "gross_amount"}, ...}` → 201 `{"token", "redirect_url"}`;
- status: `GET {API}/v2/{order_id}/status` → `{"transaction_status", "fraud_status",
  "gross_amount": "10000.00", "status_code", ...}`;
- notification: the same fields POSTed to us, with `signature_key` = SHA-512 of
  order_id + status_code + gross_amount + server key.
"""

import hashlib
import hmac
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext as _

from billing.models import TopUp
from zerotp import errors

TIMEOUT = (5, 15)  # seconds to connect, to read
ORDER_PREFIX = "topup-"


class Midtrans:
    name = "midtrans"
    unique_amount = False

    def hours(self) -> int:
        return settings.MIDTRANS_TOPUP_HOURS

    def start(self, topup: TopUp) -> str:
        body = {
            "transaction_details": {
                "order_id": order_id(topup),
                "gross_amount": topup.payable,
            },
            "item_details": [
                {"id": "balance", "price": topup.payable, "quantity": 1, "name": "ZeroTP balance"}
            ],
            "customer_details": {"email": topup.user.email},
            "expiry": {"unit": "hours", "duration": self.hours()},
        }
        try:
            answer = requests.post(
                f"{settings.MIDTRANS_SNAP_URL}/snap/v1/transactions",
                json=body,
                auth=(settings.MIDTRANS_SERVER_KEY, ""),
                headers={"Accept": "application/json"},
                timeout=TIMEOUT,
            )
            redirect_url = answer.json().get("redirect_url") if answer.ok else None
        except (requests.RequestException, ValueError, AttributeError):
            redirect_url = None
        if not isinstance(redirect_url, str) or not redirect_url.startswith(
            ("https://", "http://")
        ):
            raise errors.PaymentUnavailable(
                _("The payment page could not be opened; try again in a minute.")
            )
        return redirect_url


def order_id(topup: TopUp) -> str:
    return f"{ORDER_PREFIX}{topup.pk}"


def topup_id(midtrans_order_id: object) -> int | None:
    """The top-up an order_id of ours names; None for anything else."""
    if not isinstance(midtrans_order_id, str) or not midtrans_order_id.startswith(ORDER_PREFIX):
        return None
    digits = midtrans_order_id[len(ORDER_PREFIX) :]
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 19 else None


def signature_valid(notification: dict[str, Any]) -> bool:
    fields = [notification.get(name) for name in ("order_id", "status_code", "gross_amount")]
    signature = notification.get("signature_key")
    if not all(isinstance(f, str) for f in [*fields, signature]):
        return False
    material = "".join(fields) + settings.MIDTRANS_SERVER_KEY  # type: ignore[arg-type]
    expected = hashlib.sha512(material.encode()).hexdigest()
    return hmac.compare_digest(expected, str(signature).lower())


def status(midtrans_order_id: str) -> dict[str, Any]:
    """The transaction as Midtrans has it now. Raises PaymentUnavailable when it cannot
    say (then Midtrans is answered 503 and sends the notification again)."""
    try:
        answer = requests.get(
            f"{settings.MIDTRANS_API_URL}/v2/{midtrans_order_id}/status",
            auth=(settings.MIDTRANS_SERVER_KEY, ""),
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
        data = answer.json()
    except (requests.RequestException, ValueError) as exc:
        raise errors.PaymentUnavailable(f"Midtrans's status API did not answer: {exc}") from None
    if not isinstance(data, dict):
        raise errors.PaymentUnavailable("Midtrans's status API answered no object.")
    # Its errors come as JSON too (HTTP 500 with {"status_code": "500", ...}, or HTTP 200
    # with the code in the body): never mistaken for a transaction. A transaction Midtrans
    # does not know (404) is an answer: there is nothing to credit.
    code = str(data.get("status_code", ""))
    if (
        (not answer.ok and answer.status_code != 404)
        or code.startswith("5")
        or code
        in (
            "401",
            "429",
        )
    ):
        raise errors.PaymentUnavailable(
            f"Midtrans's status API answered {code or answer.status_code}."
        )
    return data


def outcome(transaction: dict[str, Any]) -> str | None:
    """`paid`, `failed`, or None (still pending, or nothing we act on)."""
    state = transaction.get("transaction_status")
    if state == "settlement" or (
        state == "capture" and transaction.get("fraud_status") == "accept"
    ):
        return "paid"
    if state in ("expire", "cancel", "deny", "failure"):
        return "failed"
    return None


def gross_amount(transaction: dict[str, Any]) -> int | None:
    """Midtrans writes amounts as "10000.00"; a whole number of rupiah, or None."""
    try:
        amount = Decimal(str(transaction.get("gross_amount")))
    except InvalidOperation:
        return None
    return int(amount) if amount.is_finite() and amount == amount.to_integral() else None
