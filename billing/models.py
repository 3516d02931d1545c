"""A double-entry ledger in integer rupiah.

Every movement is a LedgerTransaction whose entries sum to zero and whose `reference`
is unique (`order:123:capture`), so the same movement can never be booked twice. Each
LedgerAccount caches its balance, updated in the same database transaction as the
entries; a check constraint keeps every balance but the external source at zero or more.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        WALLET = "wallet", "User wallet"
        ESCROW = "escrow", "Platform escrow"
        REVENUE = "revenue", "Platform revenue"
        EXTERNAL = "external", "External source (top-ups)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="wallet",
    )
    balance = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
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
        return f"wallet of {self.user}" if self.user_id else self.get_kind_display()


class LedgerTransaction(models.Model):
    class Kind(models.TextChoices):
        TOPUP = "topup", "Top-up"
        HOLD = "hold", "Order hold"
        CAPTURE = "capture", "Order capture"
        RELEASE = "release", "Order release"

    reference = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    memo = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.reference


class LedgerEntry(models.Model):
    # No index of its own: billing_one_entry_per_account starts with the transaction.
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="Positive credits the account, negative debits it.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["account", "-id"], name="billing_entry_account_idx")]
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="billing_entry_not_zero"),
            models.UniqueConstraint(
                fields=["transaction", "account"], name="billing_one_entry_per_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transaction.reference} {self.account}: {self.amount:+d}"
