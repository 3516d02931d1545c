"""Top-ups: a buyer pays in through a provider (billing/providers/), and a paid top-up
credits the wallet through one ledger transaction, `topup:<id>`, exactly once: the status
changes from pending (or expired) to paid in a conditional UPDATE, and the ledger's unique
reference stands behind it, whatever arrives twice."""

import logging
import random
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.models import TopUp
from billing.providers import enabled, midtrans
from billing.services import topup as credit
from zerotp import errors
from zerotp.money import rupiah

log = logging.getLogger(__name__)

SUFFIXES = range(1, 1000)  # the 3-digit suffix of a bank transfer's amount
LATE_TRANSFER_DAYS = timedelta(days=7)
_CLAIM_ATTEMPTS = 5


def _amount(amount: object) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise errors.InvalidRequest(
            "amount must be a whole number of rupiah.", fields={"amount": ["Not a number."]}
        )
    if not settings.TOPUP_MIN <= amount <= settings.TOPUP_MAX:
        message = _("A top-up is %(minimum)s to %(maximum)s.") % {
            "minimum": rupiah(settings.TOPUP_MIN),
            "maximum": rupiah(settings.TOPUP_MAX),
        }
        raise errors.InvalidRequest(message, fields={"amount": [message]})
    return amount


def too_many_alike() -> str:
    return _("Too many transfers of this amount are waiting; choose a slightly different one.")


def _free_payable(amount: int) -> int:
    """The amount plus a suffix no pending bank transfer asks for (random, so that two
    buyers asking at once rarely collide; the unique constraint settles it if they do)."""
    # An expired transfer's amount stays taken for a while: its money may still come.
    recent = timezone.now() - LATE_TRANSFER_DAYS
    taken = set(
        TopUp.objects.filter(provider="manual", payable__gt=amount, payable__lt=amount + 1000)
        .filter(
            Q(status=TopUp.Status.PENDING) | Q(status=TopUp.Status.EXPIRED, created_at__gte=recent)
        )
        .values_list("payable", flat=True)
    )
    free = [amount + suffix for suffix in SUFFIXES if amount + suffix not in taken]
    if not free:
        raise errors.InvalidRequest(too_many_alike())
    return random.choice(free)  # tells transfers apart; no secret


def topup_create(*, user: User, amount: object, provider: object) -> TopUp:
    """A pending top-up; for a provider with a payment page, its URL is in redirect_url."""
    providers = enabled()
    if not isinstance(provider, str) or provider not in providers:
        message = f"provider must be one of {', '.join(providers)}."
        raise errors.InvalidRequest(message, fields={"provider": [message]})
    amount = _amount(amount)
    adapter = providers[provider]
    now = timezone.now()
    for attempt in range(_CLAIM_ATTEMPTS):
        payable = _free_payable(amount) if adapter.unique_amount else amount
        try:
            with transaction.atomic():
                topup = TopUp.objects.create(
                    user=user,
                    provider=provider,
                    amount=amount,
                    payable=payable,
                    created_at=now,
                    expires_at=now + timedelta(hours=adapter.hours()),
                )
            break
        except IntegrityError:
            if attempt == _CLAIM_ATTEMPTS - 1:
                raise errors.InvalidRequest(too_many_alike()) from None
    # Outside the transaction: the provider's answer may take seconds.
    try:
        topup.redirect_url = adapter.start(topup)
    except errors.PaymentUnavailable:
        TopUp.objects.filter(pk=topup.pk).update(
            status=TopUp.Status.FAILED, closed_at=timezone.now()
        )
        raise
    if topup.redirect_url:
        TopUp.objects.filter(pk=topup.pk).update(redirect_url=topup.redirect_url)
    return topup


def topup_pay(*, topup_id: int, provider_status: str = "", note: str = "") -> bool:
    """Credit a top-up's payment; True if this call did it (False: it was paid already,
    or failed). A pending or expired top-up can be paid: the money came."""
    with transaction.atomic():
        paid = TopUp.objects.filter(
            pk=topup_id, status__in=(TopUp.Status.PENDING, TopUp.Status.EXPIRED)
        ).update(
            status=TopUp.Status.PAID, closed_at=timezone.now(), provider_status=provider_status
        )
        if not paid:
            return False
        topup = TopUp.objects.select_related("user").get(pk=topup_id)
        credit(
            user=topup.user,
            amount=topup.payable,
            reference=topup.reference,
            note=note or f"{topup.provider} top-up {topup.pk}",
        )
    return True


def topup_fail(*, topup_id: int, provider_status: str = "") -> bool:
    """The provider says this payment will not come (expired, cancelled, denied)."""
    return bool(
        TopUp.objects.filter(pk=topup_id, status=TopUp.Status.PENDING).update(
            status=TopUp.Status.FAILED, closed_at=timezone.now(), provider_status=provider_status
        )
    )


def topups_expire(*, now: datetime | None = None) -> int:
    """Pending top-ups past their time: expired (a payment arriving later still pays)."""
    moment = now or timezone.now()
    return TopUp.objects.filter(status=TopUp.Status.PENDING, expires_at__lte=moment).update(
        status=TopUp.Status.EXPIRED, closed_at=moment
    )


def transfers_confirm(*, statement: str) -> list[TopUp]:
    """Staff paste bank statement lines: a line with an amount that is exactly what a
    pending (or expired) bank-transfer top-up asks for pays it. The top-ups paid, each once
    however often its line is pasted."""
    confirmed = []
    for line in statement.splitlines():
        for amount in line_amounts(line):
            topup = (
                TopUp.objects.filter(
                    provider="manual",
                    payable=amount,
                    status__in=(TopUp.Status.PENDING, TopUp.Status.EXPIRED),
                )
                .order_by("-status", "id")  # pending before expired, then the oldest
                .first()
            )
            if topup is not None:
                if topup_pay(topup_id=topup.pk, note="bank statement"):
                    confirmed.append(topup)
                break
    return confirmed


# An amount as banks print it, a whole token: "50.336,00", "1,250,347.00", "1250347".
_MONEY = re.compile(r"^(?:Rp\.?)?(\d{1,3}(?:([.,])\d{3})(?:\2\d{3})*|\d+)(?:[.,](\d{2}))?$")


def line_amounts(line: str) -> list[int]:
    """The amounts on a credit line of a bank statement, most likely first: tokens written
    as money (with thousands separators), then bare numbers; numbers inside other tokens
    (a reference such as WS95051, a date) are none. A debit line (DB) has none."""
    tokens = [token.rstrip(".,;:") for token in line.split()]
    if "DB" in tokens:
        return []
    grouped: list[int] = []
    bare: list[int] = []
    for token in tokens:
        match = _MONEY.match(token)
        if match is None:
            continue
        digits = re.sub(r"[.,]", "", match.group(1))
        if len(digits) > 15:
            continue
        (grouped if match.group(2) else bare).append(int(digits))
    return grouped + bare


def midtrans_notified(notification: dict[str, Any]) -> str:
    """Act on Midtrans's HTTP notification: its signature checked, then the transaction
    read again from the status API, which alone decides (a notification is only a hint
    that something changed). What was done: paid, failed, unchanged or ignored.

    Raises Forbidden for a bad signature (not Midtrans) and PaymentUnavailable when the
    status API cannot say: Midtrans then sends the notification again."""
    if not midtrans.signature_valid(notification):
        raise errors.Forbidden("The notification's signature_key is not Midtrans's.")
    topup_id = midtrans.topup_id(notification.get("order_id"))
    topup = TopUp.objects.filter(pk=topup_id, provider="midtrans").first() if topup_id else None
    if topup is None:
        log.warning("midtrans notification for an unknown order %r", notification.get("order_id"))
        return "ignored"
    transaction_now = midtrans.status(midtrans.order_id(topup))
    amount = midtrans.gross_amount(transaction_now)
    if midtrans.topup_id(transaction_now.get("order_id")) != topup.pk or amount != topup.payable:
        log.error(
            "midtrans status of top-up %s does not match it (amount %r, asked %s): not credited",
            topup.pk,
            transaction_now.get("gross_amount"),
            topup.payable,
        )
        return "ignored"
    state = str(transaction_now.get("transaction_status", ""))[:32]
    outcome = midtrans.outcome(transaction_now)
    if outcome == "paid":
        if topup_pay(topup_id=topup.pk, provider_status=state):
            return "paid"
        if TopUp.objects.filter(pk=topup.pk, status=TopUp.Status.FAILED).exists():
            log.warning(
                "midtrans says top-up %s is paid after it failed: credit it by hand", topup.pk
            )
        return "unchanged"
    if state in ("refund", "partial_refund", "chargeback", "partial_chargeback"):
        log.warning("midtrans: top-up %s was %s after its credit: adjust by hand", topup.pk, state)
    if outcome == "failed":
        return "failed" if topup_fail(topup_id=topup.pk, provider_status=state) else "unchanged"
    return "unchanged"
