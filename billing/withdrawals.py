"""Withdrawals: a reseller takes out what they earned. The request moves the amount from
their wallet to the payouts-pending account at once (`withdrawal:<id>`), so it cannot be
spent twice; staff then pay it out (`withdrawal:<id>:paid`, to the external world) or
reject it (`withdrawal:<id>:returned`, back to the wallet). Each step is a conditional
status change plus a ledger transaction with a unique reference: done once, whatever
arrives twice."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.models import LedgerAccount, LedgerTransaction, Withdrawal
from billing.services import Leg, transfer
from zerotp import errors
from zerotp.money import rupiah
from zerotp.text import unstorable

log = logging.getLogger(__name__)
Kind = LedgerAccount.Kind
TxKind = LedgerTransaction.Kind


def _text(name: str, value: object, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip() or unstorable(value):
        raise errors.InvalidRequest(f"{name} is required.", fields={name: ["Required."]})
    if len(value.strip()) > max_length:
        message = f"{name} is at most {max_length} characters."
        raise errors.InvalidRequest(message, fields={name: [message]})
    return value.strip()


def withdrawal_request(
    *,
    reseller: User,
    amount: object,
    method: object,
    account_name: object,
    account_number: object,
    bank_or_wallet: object,
) -> Withdrawal:
    """Take the amount out of the reseller's wallet into payouts-pending, for staff to pay.
    Errors: forbidden (not a reseller), invalid_request, insufficient_balance."""
    if not reseller.is_reseller:
        raise errors.Forbidden(_("Only resellers withdraw: buyers spend their balance on orders."))
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise errors.InvalidRequest(
            "amount must be a whole number of rupiah.", fields={"amount": ["Not a number."]}
        )
    if amount < settings.WITHDRAWAL_MIN:
        message = _("The smallest withdrawal is %(minimum)s.") % {
            "minimum": rupiah(settings.WITHDRAWAL_MIN)
        }
        raise errors.InvalidRequest(message, fields={"amount": [message]})
    if method not in Withdrawal.Method.values:
        message = f"method must be one of {', '.join(Withdrawal.Method.values)}."
        raise errors.InvalidRequest(message, fields={"method": [message]})
    details = {
        "account_name": _text("account_name", account_name, 100),
        "account_number": _text("account_number", account_number, 40),
        "bank_or_wallet": _text("bank_or_wallet", bank_or_wallet, 40),
    }
    with transaction.atomic():
        withdrawal = Withdrawal.objects.create(
            reseller=reseller, amount=amount, method=method, **details
        )
        # The wallet's debit is refused below zero: the whole request rolls back.
        try:
            transfer(
                reference=f"withdrawal:{withdrawal.pk}",
                kind=TxKind.WITHDRAWAL,
                legs=[Leg.wallet(reseller, -amount), Leg(Kind.PAYOUTS_PENDING, amount)],
            )
        except errors.InsufficientBalance:
            raise errors.InsufficientBalance(
                _("Your balance is below %(amount)s: withdraw at most what it holds.")
                % {"amount": rupiah(amount)}
            ) from None
    return withdrawal


def withdrawal_pay(*, withdrawal_id: int, transfer_reference: str) -> bool:
    """Staff sent the money: payouts-pending to the external world. True if this call did
    it; a paid or rejected withdrawal is left as it is."""
    reference = transfer_reference.strip()
    if not reference:
        raise errors.InvalidRequest(_("The transfer's reference is required."))
    with transaction.atomic():
        changed = Withdrawal.objects.filter(
            pk=withdrawal_id, status=Withdrawal.Status.PENDING
        ).update(
            status=Withdrawal.Status.PAID,
            transfer_reference=reference[:100],
            decided_at=timezone.now(),
        )
        if not changed:
            return False
        withdrawal = Withdrawal.objects.select_related("reseller").get(pk=withdrawal_id)
        transfer(
            reference=f"withdrawal:{withdrawal.pk}:paid",
            kind=TxKind.PAYOUT,
            legs=[
                Leg(Kind.PAYOUTS_PENDING, -withdrawal.amount),
                Leg(Kind.EXTERNAL, withdrawal.amount),
            ],
        )
        transaction.on_commit(lambda: _tell(withdrawal))
    return True


def withdrawal_reject(*, withdrawal_id: int, note: str) -> bool:
    """Staff refuse it: the amount goes back to the reseller's wallet. True if this call
    did it."""
    with transaction.atomic():
        changed = Withdrawal.objects.filter(
            pk=withdrawal_id, status=Withdrawal.Status.PENDING
        ).update(status=Withdrawal.Status.REJECTED, note=note[:255], decided_at=timezone.now())
        if not changed:
            return False
        withdrawal = Withdrawal.objects.select_related("reseller").get(pk=withdrawal_id)
        transfer(
            reference=f"withdrawal:{withdrawal.pk}:returned",
            kind=TxKind.WITHDRAWAL_RETURN,
            legs=[
                Leg(Kind.PAYOUTS_PENDING, -withdrawal.amount),
                Leg.wallet(withdrawal.reseller, withdrawal.amount),
            ],
        )
        transaction.on_commit(lambda: _tell(withdrawal))
    return True


def _tell(withdrawal: Withdrawal) -> None:
    """The reseller's email about the change (after the commit: never for a rollback)."""
    amount = rupiah(withdrawal.amount)
    if withdrawal.status == Withdrawal.Status.PAID:
        subject = f"ZeroTP: your withdrawal of {amount} is paid"
        body = (
            f"We sent {amount} to {withdrawal.bank_or_wallet} {withdrawal.account_number} "
            f"({withdrawal.account_name}). Transfer reference: {withdrawal.transfer_reference}."
        )
    else:
        subject = f"ZeroTP: your withdrawal of {amount} was declined"
        body = f"{amount} is back in your balance. Reason: {withdrawal.note or 'not given'}."
    try:
        send_mail(subject, body, None, [withdrawal.reseller.email])
    except Exception:  # the money moved: a mail server's trouble must not undo the answer
        log.exception("could not email %s about withdrawal %s", withdrawal.reseller, withdrawal.pk)
