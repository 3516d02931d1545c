"""Buyer pages (landing, dashboard, live active orders, history, transactions) and the staff
overview. Orders are made, cancelled and finished only through orders.services."""

from typing import cast

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.views import SignedInRequest, login_required
from billing.services import wallet_balance
from orders.dashboard import (
    CatalogueEntry,
    active_orders,
    catalogue,
    favourite_applications,
    number_lines,
    numbers_modems,
    order_block,
    order_history,
    price_list,
    staff_overview,
    wallet_entries,
    wallet_lines,
)
from orders.forms import HistoryFilterForm, OrderForm
from orders.representation import new_order_json
from orders.services import Idempotency, order_cancel, order_create, order_finish
from zerotp.errors import DomainError, InsufficientBalance
from zerotp.money import rupiah

# A clear headline above the service's own message, in the reader's language.
_REFUSALS = {
    "out_of_stock": gettext_lazy("Out of stock."),
    "insufficient_balance": gettext_lazy("Not enough balance: top up first."),
    "too_many_active_orders": gettext_lazy("Too many orders waiting for an SMS."),
    "not_found": gettext_lazy("This application is not available."),
    "rate_limited": gettext_lazy("Ordering is paused for now."),
}


def landing(request: HttpRequest) -> HttpResponse:
    context = {"catalogue": catalogue(), "ttl_minutes": settings.ORDER_TTL_SECONDS // 60}
    return render(request, "orders/landing.html", context)


def _selected(entries: list[CatalogueEntry], application: str | None) -> CatalogueEntry | None:
    try:
        wanted = int(application) if application is not None else None
    except (TypeError, ValueError):
        wanted = None
    return next((app for app in entries if app.id == wanted), entries[0] if entries else None)


def _operator(selected: CatalogueEntry | None, wanted: str | None) -> str:
    """The operator to show ticked: the one asked for if sold, else normal, else the first."""
    if selected is None or not selected.offers:
        return wanted or "normal"
    for candidate in (wanted, "normal"):
        if candidate and selected.offer(candidate):
            return candidate
    return selected.offers[0].operator


def _active_context(request: SignedInRequest) -> dict[str, object]:
    return {"orders": active_orders(request.user), "balance": wallet_balance(request.user)}


def _choices_context(
    selected: CatalogueEntry | None, operator: str, balance: int
) -> dict[str, object]:
    """The operator radios and the Buy button, with why it is off if it is."""
    offer = selected.offer(operator) if selected else None
    return {
        "selected": selected,
        "selected_operator": operator,
        "blocked": order_block(offer, balance),
    }


def _refusal(exc: DomainError) -> str:
    """The order form's error: a headline, then the service's message, or for a short
    balance the amounts written the reader's way (the API's message keeps plain figures)."""
    headline = _REFUSALS.get(exc.code)
    detail = exc.message
    if isinstance(exc, InsufficientBalance) and exc.price is not None:
        detail = _("Your balance is %(balance)s; the price is %(price)s.") % {
            "balance": rupiah(exc.balance or 0),
            "price": rupiah(exc.price),
        }
    return f"{headline} {detail}" if headline else detail


@login_required
def dashboard(request: SignedInRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    favourites = favourite_applications(request.user)
    entries = price_list(catalogue(), favourites, query)
    if request.method == "POST":
        form = OrderForm(request.POST, catalogue=entries)
        if form.is_valid():
            try:
                created = order_create(
                    buyer=request.user,
                    application_id=form.cleaned_data["application"],
                    operator=form.cleaned_data["operator"],
                    idempotency=Idempotency(form.idempotency_key(), new_order_json),
                )
            except DomainError as exc:
                form.add_error(None, _refusal(exc))
            else:
                catalogue(refresh=True)  # the form after the redirect counts this order
                messages.success(
                    request,
                    _("Order #%(id)s: your number is %(number)s. The code appears below.")
                    % {"id": created.order.pk, "number": created.order.phone_number},
                )
                return redirect("dashboard")
        selected = _selected(entries, request.POST.get("application"))
        operator = _operator(selected, request.POST.get("operator"))
    else:
        selected = _selected(entries, request.GET.get("application"))
        operator = _operator(selected, request.GET.get("operator"))
        form = OrderForm(
            catalogue=entries,
            initial={"application": selected.id if selected else None, "operator": operator},
        )
    active = _active_context(request)
    context = {
        "form": form,
        "applications": entries,
        "favourites": favourites,
        "query": query,
        **_choices_context(selected, operator, cast(int, active["balance"])),
        **active,
    }
    return render(request, "orders/dashboard.html", context)


@login_required
def operator_choices(request: SignedInRequest) -> HttpResponse:
    """The operator radios (price and stock) of one application and the Buy button: the
    order form swaps them in when the application or the operator changes."""
    selected = _selected(catalogue(), request.GET.get("application"))
    operator = _operator(selected, request.GET.get("operator"))
    return render(
        request,
        "orders/_operator_choices.html",
        _choices_context(selected, operator, wallet_balance(request.user)),
    )


@login_required
def active_orders_partial(request: SignedInRequest) -> HttpResponse:
    """The live part of the dashboard, polled by htmx: active orders and the balance."""
    return render(request, "orders/_active_orders.html", {**_active_context(request), "oob": True})


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("dashboard")


@require_POST
@login_required
def order_cancel_view(request: SignedInRequest, order_id: int) -> HttpResponse:
    try:
        order = order_cancel(buyer=request.user, order_id=order_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        catalogue(refresh=True)  # the order form shows the number back in stock at once
        messages.success(
            request,
            _("Order #%(id)s cancelled: %(amount)s is back in your balance.")
            % {"id": order.pk, "amount": rupiah(order.price)},
        )
    return _back(request)


@require_POST
@login_required
def order_finish_view(request: SignedInRequest, order_id: int) -> HttpResponse:
    try:
        order = order_finish(buyer=request.user, order_id=order_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Order #%(id)s finished. Thank you!") % {"id": order.pk})
    return _back(request)


@login_required
def history(request: SignedInRequest) -> HttpResponse:
    filters = HistoryFilterForm(request.GET or None)
    status = filters.cleaned_data["status"] if filters.is_valid() else None
    page = Paginator(order_history(request.user, status), 20).get_page(request.GET.get("page"))
    return render(request, "orders/history.html", {"filters": filters, "page": page})


@login_required
def transactions(request: SignedInRequest) -> HttpResponse:
    page = Paginator(wallet_entries(request.user), 25).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "lines": wallet_lines(request.user, list(page.object_list)),
        "balance": wallet_balance(request.user),
    }
    return render(request, "orders/transactions.html", context)


def _numbers_page(request: SignedInRequest, reseller: User | None) -> HttpResponse:
    resting_only = request.GET.get("resting") == "1"
    modems = numbers_modems(reseller, resting_only)
    page = Paginator(modems, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "lines": number_lines(list(page.object_list)),
        "resting_only": resting_only,
        "staff_view": reseller is None,
        "rest_after": settings.NUMBER_REST_AFTER_FAILURES,
        "rest_hours": f"{settings.NUMBER_REST_SECONDS / 3600:g}",
    }
    return render(request, "orders/numbers.html", context)


@login_required
def reseller_numbers(request: SignedInRequest) -> HttpResponse:
    """How each of the reseller's numbers delivers, per application, and which rest."""
    if not request.user.is_reseller:
        return redirect("reseller")
    return _numbers_page(request, request.user)


@login_required
def staff_numbers(request: SignedInRequest) -> HttpResponse:
    """The same across resellers."""
    if not request.user.is_staff:
        raise PermissionDenied
    return _numbers_page(request, None)


@login_required
def staff(request: SignedInRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied
    return render(request, "orders/staff.html", {"overview": staff_overview()})
