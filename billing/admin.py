"""The ledger is read-only in admin: money moves only through the billing services. Staff
confirm bank transfers (one click, or a pasted bank statement) and pay or reject
withdrawals here."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import UserAdmin
from accounts.models import User
from billing.adjustments import balance_adjust
from billing.models import (
    BalanceAdjustment,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TopUp,
    Withdrawal,
)
from billing.services import wallet_balance
from billing.topups import topup_pay, transfers_confirm
from billing.withdrawals import withdrawal_pay, withdrawal_reject
from zerotp import errors
from zerotp.money import rupiah


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "kind", "balance", "created_at")
    list_filter = ("kind",)
    search_fields = ("user__email",)


class LedgerEntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    fields = ("account", "amount")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("reference", "kind", "memo", "created_at")
    list_filter = ("kind",)
    search_fields = ("reference", "memo", "entries__account__user__email")
    date_hierarchy = "created_at"
    inlines = [LedgerEntryInline]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("transaction", "account", "amount", "created_at")
    list_filter = ("account__kind", "transaction__kind")
    search_fields = ("transaction__reference", "account__user__email")
    list_select_related = ("transaction", "account__user")


class AdjustmentForm(forms.Form):
    amount = forms.IntegerField(
        label=_("Amount (rupiah)"),
        help_text=_("Positive credits the balance, negative debits it (never below zero)."),
    )
    note = forms.CharField(
        max_length=255, label=_("Note"), help_text=_("Why: the buyer sees it under Transactions.")
    )


# The users list and page with each balance, and the form that adjusts it: billing extends
# the accounts app's admin (accounts knows no wallet).
admin.site.unregister(User)


@admin.register(User)
class UserWithBalanceAdmin(UserAdmin):
    list_display = (*UserAdmin.list_display, "balance")  # type: ignore[assignment]
    readonly_fields = (*UserAdmin.readonly_fields, "balance")  # type: ignore[assignment]
    fieldsets = (*UserAdmin.fieldsets, (_("Balance"), {"fields": ("balance",)}))  # type: ignore[assignment]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).annotate(wallet_balance=F("wallet__balance"))

    @admin.display(description=_("balance"), ordering="wallet_balance")
    def balance(self, user: User) -> str:
        amount = rupiah(getattr(user, "wallet_balance", None) or 0)
        if user.pk is None:
            return amount
        url = reverse("admin:billing_user_adjust", args=[user.pk])
        return format_html('{} <a href="{}">{}</a>', amount, url, gettext("Adjust the balance"))

    def get_urls(self) -> list:
        adjust = self.admin_site.admin_view(self.adjust)
        return [
            path("<int:user_id>/adjust/", adjust, name="billing_user_adjust"),
            *super().get_urls(),
        ]

    def adjust(self, request: HttpRequest, user_id: int) -> HttpResponse:
        if not request.user.has_perm("accounts.change_user"):
            raise PermissionDenied
        user = get_object_or_404(User, pk=user_id)
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                adjustment = balance_adjust(
                    user=user,
                    amount=form.cleaned_data["amount"],
                    note=form.cleaned_data["note"],
                    staff=request.user,  # type: ignore[arg-type]
                )
            except errors.DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    gettext(
                        "Adjusted %(email)s by %(amount)s (adjustment:%(id)s); the balance is "
                        "%(balance)s."
                    )
                    % {
                        "email": user.email,
                        "amount": rupiah(adjustment.amount),
                        "id": adjustment.pk,
                        "balance": rupiah(wallet_balance(user)),
                    },
                )
                return redirect("admin:accounts_user_change", user.pk)
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "subject": user,
            "balance": wallet_balance(user),
            "title": gettext("Adjust the balance of %(email)s") % {"email": user.email},
        }
        return render(request, "admin/billing/adjust.html", context)


class StatementForm(forms.Form):
    statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 100}),
        label=_("Statement"),
        help_text=_(
            "Paste the bank statement's lines: each line with the exact amount of a "
            "waiting bank-transfer top-up pays it (once, however often it is pasted)."
        ),
    )


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "provider",
        "shown_amount",
        "shown_payable",
        "status",
        "created_at",
        "closed_at",
    )
    list_filter = ("status", "provider")
    search_fields = ("user__email", "=payable", "=id")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    actions = ["confirm"]

    @admin.display(description=_("amount"), ordering="amount")
    def shown_amount(self, topup: TopUp) -> str:
        return rupiah(topup.amount)

    @admin.display(description=_("to pay"), ordering="payable")
    def shown_payable(self, topup: TopUp) -> str:
        return rupiah(topup.payable)

    @admin.action(description=_("Confirm the payment arrived (bank transfers)"))
    def confirm(self, request: HttpRequest, queryset: QuerySet[TopUp]) -> None:
        paid = [
            t
            for t in queryset.filter(provider="manual")
            if topup_pay(topup_id=t.pk, note=f"confirmed by {request.user}")
        ]
        self.message_user(
            request,
            gettext(
                "Credited %(count)s top-ups; the others were paid, failed or not bank transfers."
            )
            % {"count": len(paid)},
        )

    def get_urls(self) -> list:
        return [
            path(
                "statement/",
                self.admin_site.admin_view(self.statement),
                name="billing_topup_statement",
            ),
            *super().get_urls(),
        ]

    def statement(self, request: HttpRequest) -> HttpResponse:
        form = StatementForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            paid = transfers_confirm(statement=form.cleaned_data["statement"])
            if paid:
                listed = ", ".join(f"#{t.pk} {t.user} {rupiah(t.payable)}" for t in paid)
                self.message_user(
                    request,
                    gettext("Credited %(count)s top-ups: %(listed)s.")
                    % {"count": len(paid), "listed": listed},
                )
            else:
                self.message_user(
                    request, gettext("No line matched a waiting bank transfer."), messages.WARNING
                )
            return redirect("admin:billing_topup_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": gettext("Confirm bank transfers from a statement"),
        }
        return render(request, "admin/billing/statement.html", context)


class RejectForm(forms.Form):
    note = forms.CharField(max_length=255, label=_("Reason (the reseller reads it)"))


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "reseller",
        "shown_amount",
        "method",
        "bank_or_wallet",
        "account_number",
        "account_name",
        "status",
        "transfer_reference",
        "created_at",
        "decided_at",
    )
    list_filter = ("status", "method")
    search_fields = ("reseller__email", "account_number", "transfer_reference")
    list_select_related = ("reseller",)
    date_hierarchy = "created_at"
    actions = ["pay", "reject"]

    @admin.display(description=_("amount"), ordering="amount")
    def shown_amount(self, withdrawal: Withdrawal) -> str:
        return rupiah(withdrawal.amount)

    @admin.action(description=_("Mark paid (enter each transfer's reference)"))
    def pay(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> HttpResponse | None:
        waiting = list(queryset.filter(status=Withdrawal.Status.PENDING))
        if "apply" in request.POST:
            references = {w.pk: request.POST.get(f"reference_{w.pk}", "").strip() for w in waiting}
            missing = [w.pk for w in waiting if not references[w.pk]]
            if not missing:
                paid = [
                    w
                    for w in waiting
                    if withdrawal_pay(withdrawal_id=w.pk, transfer_reference=references[w.pk])
                ]
                self.message_user(
                    request,
                    gettext("Marked %(count)s withdrawals paid; the resellers are emailed.")
                    % {"count": len(paid)},
                )
                return None
            self.message_user(
                request, gettext("Every withdrawal needs its transfer reference."), messages.ERROR
            )
        return render(
            request,
            "admin/billing/withdrawals_pay.html",
            {
                **self.admin_site.each_context(request),
                "withdrawals": waiting,
                "title": gettext("Mark withdrawals paid"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description=_("Reject (the amount goes back to the reseller)"))
    def reject(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> HttpResponse | None:
        waiting = list(queryset.filter(status=Withdrawal.Status.PENDING))
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            rejected = [
                w
                for w in waiting
                if withdrawal_reject(withdrawal_id=w.pk, note=form.cleaned_data["note"])
            ]
            self.message_user(
                request,
                gettext("Rejected %(count)s withdrawals; the amounts are back in the balances.")
                % {"count": len(rejected)},
            )
            return None
        return render(
            request,
            "admin/billing/withdrawals_reject.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "withdrawals": waiting,
                "title": gettext("Reject withdrawals"),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(BalanceAdjustment)
class BalanceAdjustmentAdmin(ReadOnlyAdmin):
    """Made from the user page's "Adjust the balance"; read-only here, as the ledger."""

    list_display = ("id", "user", "amount", "note", "staff", "created_at")
    search_fields = ("user__email", "note")
    list_select_related = ("user", "staff")
    date_hierarchy = "created_at"
