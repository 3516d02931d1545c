"""Money pages: the buyer's top-ups (choose an amount and a way to pay, then pay: a bank
transfer's instructions, or Midtrans's page) and the reseller's withdrawals. Every write
goes through billing/topups.py and billing/withdrawals.py."""

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csp import csp_override

from accounts.views import SignedInRequest, login_required
from billing.finance import finance_figures, ledger_rows
from billing.models import TopUp, Withdrawal
from billing.providers import enabled, midtrans, payment_page_origins
from billing.services import wallet_balance
from billing.topups import topup_create
from billing.withdrawals import withdrawal_request
from zerotp.errors import DomainError
from zerotp.money import rupiah

PRESETS = (25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000)
_PROVIDER_NAMES = {
    "manual": _("Bank transfer (confirmed by the operator, usually within hours)"),
    "midtrans": _("QRIS, virtual account or e-wallet (Midtrans, credited at once)"),
}


class TopUpForm(forms.Form):
    amount = forms.IntegerField(label=_("Amount (rupiah)"))
    provider = forms.ChoiceField(label=_("How to pay"), widget=forms.RadioSelect)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # The limits are the services' (billing/topups.py); the page shows them beforehand.
        self.fields["amount"].widget.attrs.update(
            {"min": settings.TOPUP_MIN, "max": settings.TOPUP_MAX, "step": 1000}
        )
        providers = list(enabled())
        provider = self.fields["provider"]
        assert isinstance(provider, forms.ChoiceField)
        provider.choices = [(p, _PROVIDER_NAMES[p]) for p in providers]
        provider.initial = providers[0]


@login_required
def topup_page(request: SignedInRequest) -> HttpResponse:
    form = TopUpForm(request.POST or None, initial={"amount": 100_000})
    if request.method == "POST" and form.is_valid():
        try:
            topup = topup_create(
                user=request.user,
                amount=form.cleaned_data["amount"],
                provider=form.cleaned_data["provider"],
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            if topup.redirect_url:
                return redirect(topup.redirect_url)
            return redirect("topup-detail", topup_id=topup.pk)
    context = {
        "form": form,
        "presets": PRESETS,
        "balance": wallet_balance(request.user),
        "topups": TopUp.objects.filter(user=request.user).order_by("-id")[:10],
    }
    # The form is answered with a redirect to the provider's payment page: the browser
    # follows it only if this page's CSP lets its forms go there.
    policy = cast(dict[str, list[str]], settings.SECURE_CSP)
    policy = {**policy, "form-action": [*policy["form-action"], *payment_page_origins()]}
    page = csp_override(policy)(lambda request: render(request, "billing/topup.html", context))
    return page(request)


@login_required
def midtrans_finish(request: SignedInRequest) -> HttpResponse:
    """Where Midtrans sends the buyer back ("finish redirect URL" in its dashboard:
    https://<site>/topup/midtrans/finish/): the top-up's own page."""
    topup_id = midtrans.topup_id(request.GET.get("order_id"))
    if topup_id is None or not TopUp.objects.filter(pk=topup_id, user=request.user).exists():
        return redirect("topup")
    return redirect("topup-detail", topup_id=topup_id)


@login_required
def topup_detail(request: SignedInRequest, topup_id: int) -> HttpResponse:
    topup = TopUp.objects.filter(pk=topup_id, user=request.user).first()
    if topup is None:
        raise Http404
    context = {"topup": topup, "bank_accounts": settings.MANUAL_BANK_ACCOUNTS}
    return render(request, "billing/topup_detail.html", context)


class WithdrawalForm(forms.Form):
    amount = forms.IntegerField(label=_("Amount (rupiah)"))
    method = forms.ChoiceField(
        label=_("Send it by"), choices=Withdrawal.Method.choices, widget=forms.RadioSelect
    )
    bank_or_wallet = forms.CharField(label=_("Bank or e-wallet (BCA, Mandiri, DANA, OVO, ...)"))
    account_number = forms.CharField(label=_("Account or phone number"))
    account_name = forms.CharField(label=_("Name on the account"))


@login_required
def withdrawals_page(request: SignedInRequest) -> HttpResponse:
    if not request.user.is_reseller:
        return redirect("reseller")
    form = WithdrawalForm(request.POST or None, initial={"method": Withdrawal.Method.BANK})
    if request.method == "POST" and form.is_valid():
        try:
            withdrawal = withdrawal_request(reseller=request.user, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request,
                _("Withdrawal #%(id)s of %(amount)s requested: it is paid out by the operator.")
                % {"id": withdrawal.pk, "amount": rupiah(withdrawal.amount)},
            )
            return redirect("withdrawals")
    context = {
        "form": form,
        "balance": wallet_balance(request.user),
        "minimum": settings.WITHDRAWAL_MIN,
        "withdrawals": Withdrawal.objects.filter(reseller=request.user).order_by("-id")[:20],
    }
    return render(request, "billing/withdrawals.html", context)


@login_required
def finance(request: SignedInRequest) -> HttpResponse:
    """Staff: money in and out today, what waits, and the ledger as CSV for any dates."""
    if not request.user.is_staff:
        raise PermissionDenied
    today = timezone.localdate()
    return render(
        request, "billing/finance.html", {"figures": finance_figures(), "today": today.isoformat()}
    )


@login_required
def ledger_csv(request: SignedInRequest) -> HttpResponse | StreamingHttpResponse:
    """Staff: every ledger entry from `from` to `to` (dates, both included), as CSV."""
    if not request.user.is_staff:
        raise PermissionDenied
    try:
        start = date.fromisoformat(request.GET.get("from") or timezone.localdate().isoformat())
        end = date.fromisoformat(request.GET.get("to") or start.isoformat())
    except ValueError:
        return HttpResponse("from and to are dates: YYYY-MM-DD.", status=400)
    zone = timezone.get_current_timezone()
    since = datetime.combine(start, time.min, zone)
    until = datetime.combine(end + timedelta(days=1), time.min, zone)
    rows = ledger_rows(since=since, until=until)
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="ledger-{start}-{end}.csv"'
    return response


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterable[tuple]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(["time", "reference", "kind", "account", "email", "amount", "memo"])
    for row in rows:
        yield writer.writerow(row)
