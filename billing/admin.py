"""The ledger is read-only in admin: money moves only through billing.services."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.admin import UserAdmin
from accounts.models import User
from billing.models import LedgerAccount, LedgerEntry, LedgerTransaction
from billing.services import topup
from zerotp import errors


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


class TopupForm(forms.Form):
    amount = forms.IntegerField(min_value=1, label="Amount (rupiah)")
    note = forms.CharField(max_length=200, required=False)


@admin.action(description="Top up the selected users' balances")
def topup_users(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]
) -> HttpResponse | None:
    if "apply" in request.POST:
        form = TopupForm(request.POST)
        if form.is_valid():
            try:
                for user in queryset:
                    topup(
                        user=user,
                        amount=form.cleaned_data["amount"],
                        note=form.cleaned_data["note"] or f"admin top-up by {request.user}",
                    )
            except errors.DomainError as exc:
                modeladmin.message_user(request, exc.message, messages.ERROR)
                return None
            modeladmin.message_user(
                request, f"Credited {form.cleaned_data['amount']} IDR to {queryset.count()} users."
            )
            return None
    else:
        form = TopupForm()
    return render(
        request,
        "admin/billing/topup.html",
        {
            "form": form,
            "users": queryset,
            "title": "Top up balances",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )


# `actions` is a class attribute; the stubs declare it per instance (it holds ModelAdmin's
# type variable, which a ClassVar cannot), so setting it on the class reads as ambiguous.
UserAdmin.actions = [*(UserAdmin.actions or []), topup_users]  # type: ignore[misc]
