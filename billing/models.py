"""A double-entry ledger in integer rupiah.

Every movement is a LedgerTransaction whose entries sum to zero and whose `reference`
is unique (`order:123:capture`), so the same movement can never be booked twice. Each
LedgerAccount caches its balance, updated in the same database transaction as the
entries; a check constraint keeps every balance but the external source at zero or more.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        WALLET = "wallet", _("User wallet")
        ESCROW = "escrow", _("Platform escrow")
        REVENUE = "revenue", _("Platform revenue")
        EXTERNAL = "external", _("External source (top-ups)")
        PAYOUTS_PENDING = "payouts-pending", _("Withdrawals waiting to be paid")

    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="wallet",
        verbose_name=_("user"),
    )
    balance = models.BigIntegerField(default=0, verbose_name=_("balance"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("ledger account")
        verbose_name_plural = _("ledger accounts")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(balance__gte=0) | models.Q(kind="external"),
                name="billing_balance_never_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="wallet", user__isnull=False)
                | (~models.Q(kind="wallet") & models.Q(user__isnull=True)),
                name="billing_wallets_have_users",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=~models.Q(kind="wallet"),
                name="billing_one_platform_account_per_kind",
            ),
        ]

    def __str__(self) -> str:
        if self.user_id:
            return gettext("wallet of %(user)s") % {"user": self.user}
        return str(self.get_kind_display())


class LedgerTransaction(models.Model):
    class Kind(models.TextChoices):
        TOPUP = "topup", _("Top-up")
        HOLD = "hold", _("Order hold")
        CAPTURE = "capture", _("Order capture")
        RELEASE = "release", _("Order release")
        WITHDRAWAL = "withdrawal", _("Withdrawal requested")
        PAYOUT = "payout", _("Withdrawal paid")
        WITHDRAWAL_RETURN = "withdrawal-back", _("Withdrawal rejected")
        ADJUSTMENT = "adjustment", _("Adjustment by staff")

    reference = models.CharField(max_length=120, unique=True, verbose_name=_("reference"))
    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    memo = models.CharField(max_length=255, blank=True, default="", verbose_name=_("memo"))
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )

    class Meta:
        verbose_name = _("ledger transaction")
        verbose_name_plural = _("ledger transactions")

    def __str__(self) -> str:
        return self.reference


class LedgerEntry(models.Model):
    # No index of its own: billing_one_entry_per_account starts with the transaction.
    transaction = models.ForeignKey(
        LedgerTransaction,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
        verbose_name=_("transaction"),
    )
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="entries", verbose_name=_("account")
    )
    amount = models.BigIntegerField(
        help_text=_("Positive credits the account, negative debits it."), verbose_name=_("amount")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [models.Index(fields=["account", "-id"], name="billing_entry_account_idx")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="billing_entry_not_zero"),
            models.UniqueConstraint(
                fields=["transaction", "account"], name="billing_one_entry_per_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transaction.reference} {self.account}: {self.amount:+d}"


class TopUp(models.Model):
    """A buyer paying in through a payment provider. Paid once: its ledger transaction's
    reference is `topup:<id>`."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for payment")
        PAID = "paid", _("Paid")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Not paid")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("user")
    )
    provider = models.CharField(max_length=16, verbose_name=_("provider"))
    amount = models.PositiveBigIntegerField(
        help_text=_("What the buyer asked for, in rupiah."), verbose_name=_("amount")
    )
    payable = models.PositiveBigIntegerField(
        help_text=_("What the buyer pays: the amount, plus a unique suffix for a bank transfer."),
        verbose_name=_("to pay"),
    )
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    redirect_url = models.URLField(
        max_length=500, blank=True, default="", verbose_name=_("redirect URL")
    )
    provider_status = models.CharField(
        max_length=32, blank=True, default="", verbose_name=_("provider status")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))

    class Meta:
        verbose_name = _("top-up")
        verbose_name_plural = _("top-ups")
        indexes = [
            models.Index(fields=["user", "-id"], name="billing_topup_user_idx"),
        ]
        constraints = [
            # A bank transfer is matched to its top-up by the exact amount: no two pending
            # manual top-ups ask for the same one.
            models.UniqueConstraint(
                fields=["payable"],
                condition=models.Q(status="pending", provider="manual"),
                name="billing_topup_unique_pending_transfer",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="billing_topup_positive"),
            models.CheckConstraint(
                condition=models.Q(payable__gte=models.F("amount")),
                name="billing_topup_pays_the_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"top-up {self.pk} ({self.provider}, {self.status})"

    @property
    def reference(self) -> str:
        return f"topup:{self.pk}"


class Withdrawal(models.Model):
    """A reseller taking out what they earned. Requested: the amount leaves the wallet for
    payouts-pending at once; then staff pay it out or reject it (the amount goes back)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        PAID = "paid", _("Paid")
        REJECTED = "rejected", _("Rejected")

    class Method(models.TextChoices):
        BANK = "bank", _("Bank transfer")
        EWALLET = "ewallet", _("E-wallet")

    reseller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="withdrawals",
        verbose_name=_("reseller"),
    )
    amount = models.PositiveBigIntegerField(verbose_name=_("amount"))
    method = models.CharField(max_length=8, choices=Method.choices, verbose_name=_("method"))
    account_name = models.CharField(max_length=100, verbose_name=_("account name"))
    account_number = models.CharField(max_length=40, verbose_name=_("account number"))
    bank_or_wallet = models.CharField(max_length=40, verbose_name=_("bank or e-wallet"))
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    transfer_reference = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text=_("The bank's or wallet's reference."),
        verbose_name=_("transfer reference"),
    )
    note = models.CharField(max_length=255, blank=True, default="", verbose_name=_("note"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    decided_at = models.DateTimeField(null=True, blank=True, verbose_name=_("decided at"))

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        indexes = [models.Index(fields=["reseller", "-id"], name="billing_withdrawal_user_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="billing_withdrawal_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"withdrawal {self.pk} ({self.amount}, {self.status})"


class BalanceAdjustment(models.Model):
    """Staff correct a balance by hand (a payment received outside the providers, a
    refund, a mistake), always with a note: the ledger transaction `adjustment:<id>`."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="adjustments",
        verbose_name=_("user"),
    )
    amount = models.BigIntegerField(
        help_text=_("Positive credits the balance, negative debits it."), verbose_name=_("amount")
    )
    note = models.CharField(max_length=255, verbose_name=_("note"))
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="+",
        verbose_name=_("staff"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("balance adjustment")
        verbose_name_plural = _("balance adjustments")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(amount=0), name="billing_adjustment_not_zero"
            ),
            models.CheckConstraint(
                condition=~models.Q(note=""), name="billing_adjustment_has_note"
            ),
        ]

    def __str__(self) -> str:
        return f"adjustment {self.pk} ({self.amount:+d})"
