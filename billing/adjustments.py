"""Staff adjust a balance by hand, with a note: one ledger transaction, `adjustment:<id>`,
from or to the external source. A debit never takes the balance below zero."""

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from billing.models import BalanceAdjustment, LedgerAccount, LedgerTransaction
from billing.services import MAX_MONEY, Leg, transfer
from zerotp import errors
from zerotp.money import rupiah


def balance_adjust(*, user: User, amount: int, note: str, staff: User | None) -> BalanceAdjustment:
    note = note.strip()
    if not note:
        raise errors.InvalidRequest(
            _("Say why: a note is required."), fields={"note": [_("Required.")]}
        )
    if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
        raise errors.InvalidRequest(_("The amount is a whole number of rupiah, not 0."))
    if abs(amount) > MAX_MONEY // 2:
        raise errors.InvalidRequest(_("That amount is beyond what the ledger holds."))
    with transaction.atomic():
        adjustment = BalanceAdjustment.objects.create(
            user=user, amount=amount, note=note[:255], staff=staff
        )
        external = LedgerAccount.Kind.EXTERNAL
        try:
            transfer(
                reference=f"adjustment:{adjustment.pk}",
                kind=LedgerTransaction.Kind.ADJUSTMENT,
                legs=[Leg.wallet(user, amount), Leg(external, -amount)],
                memo=note[:255],
            )
        except errors.InsufficientBalance:
            raise errors.InsufficientBalance(
                _("The balance is below %(amount)s: it cannot go below zero.")
                % {"amount": rupiah(-amount)}
            ) from None
    return adjustment
