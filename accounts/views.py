"""Account pages: sign-up and the "API & Callback" page. Every write goes through
accounts.services or orders.callbacks; the views only translate forms and errors."""

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from accounts.forms import CallbackSettingsForm, ConfirmForm, SignupForm, TimeZoneForm
from accounts.models import ApiKey, User
from accounts.services import account_create, callback_settings_update, key_issue
from orders.callbacks import Outcome, callback_resend, callback_test
from orders.dashboard import live_key
from orders.models import CallbackDelivery
from orders.selectors import deliveries_of, service_offers
from zerotp.errors import DomainError


class HtmxRequest(HttpRequest):
    """Every request of the site: django_htmx's middleware gives each its `htmx`."""

    htmx: HtmxDetails


class SignedInRequest(HtmxRequest):
    """A request that passed login_required below: its user is an account, never anonymous.
    Only the views' signatures say so; Django builds the request as it always does."""

    user: User


def login_required[**P](
    view: Callable[Concatenate[SignedInRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HtmxRequest, P], HttpResponseBase]:
    """Django's login_required, except that an htmx request (a poll whose session ran out)
    sends the whole page to the log-in form instead of swapping the form into a fragment."""

    @wraps(view)
    def wrapped(request: HtmxRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        if request.user.is_authenticated:
            # Checked just now: the user is an account, which is all SignedInRequest adds.
            return view(cast(SignedInRequest, request), *args, **kwargs)
        if request.htmx:
            page = request.htmx.current_url_abs_path or "/"
            return HttpResponseClientRedirect(redirect_to_login(page).url)
        return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))

    return wrapped


class LoginView(auth_views.LoginView):
    """A reseller's work is on the reseller page: they land there, unless ?next= says
    otherwise (checked by Django as for everyone)."""

    def get_default_redirect_url(self) -> str:
        if getattr(self.request.user, "is_reseller", False):
            return reverse("reseller")
        return super().get_default_redirect_url()


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            account = account_create(
                email=form.cleaned_data["email"], password=form.cleaned_data["password1"]
            )
        except DomainError as exc:
            form.add_error("email", exc.message)
        else:
            login(request, account.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(
                request,
                _("Welcome to ZeroTP! Top up your balance, then order your first number."),
            )
            return redirect("dashboard")
    return render(request, "accounts/signup.html", {"form": form})


def _key_confirm_form(data: Any = None) -> ConfirmForm:
    return ConfirmForm(data, label=_("I understand that my current API key stops working at once."))


def _api_page(
    request: SignedInRequest,
    *,
    new_key: str | None = None,
    first_key: bool = False,
    key_form: ConfirmForm | None = None,
    callback_form: CallbackSettingsForm | None = None,
) -> HttpResponse:
    user = request.user
    previous_until = user.callback_secret_previous_until
    context = {
        "api_key": live_key(user, ApiKey.Kind.API),
        "new_key": new_key,
        "first_key": first_key,
        "key_form": key_form or _key_confirm_form(),
        "callback_form": callback_form
        or CallbackSettingsForm(
            initial={"callback_url": user.callback_url, "callback_enabled": user.callback_enabled}
        ),
        "previous_secret_until": previous_until
        if previous_until and previous_until > timezone.now()
        else None,
        **_delivery_log(user, request.GET.get("page")),
        "base_url": request.build_absolute_uri("/").rstrip("/"),
        "activation_country": settings.ACTIVATION_COUNTRY,
        "service_codes": service_offers(),
    }
    response = render(request, "accounts/api.html", context)
    if new_key:
        add_never_cache_headers(response)  # a key shown once must not sit in any cache
    return response


def _delivery_log(user: User, page: Any) -> dict[str, Any]:
    """One page of the callback log, and whether it must keep refreshing: a pending
    delivery changes by itself (a retry, a resend) and the page should show it."""
    deliveries = Paginator(deliveries_of(user).order_by("-id"), 20).get_page(page)
    pending = any(d.status == CallbackDelivery.Status.PENDING for d in deliveries.object_list)
    return {"deliveries": deliveries, "log_pending": pending}


@login_required
def callback_log(request: SignedInRequest) -> HttpResponse:
    context = _delivery_log(request.user, request.GET.get("page"))
    return render(request, "accounts/_deliveries.html", context)


@login_required
def api_settings(request: SignedInRequest) -> HttpResponse:
    return _api_page(request)


@require_POST
@login_required
def api_key_regenerate(request: SignedInRequest) -> HttpResponse:
    # Only replacing a working key needs the confirmation: the first one stops nothing.
    first = live_key(request.user, ApiKey.Kind.API) is None
    form = _key_confirm_form(request.POST)
    if not first and not form.is_valid():
        return _api_page(request, key_form=form)
    issued = key_issue(user=request.user, kind=ApiKey.Kind.API)
    return _api_page(request, new_key=issued.key, first_key=first)


@require_POST
@login_required
def callback_settings(request: SignedInRequest) -> HttpResponse:
    form = CallbackSettingsForm(request.POST)
    if form.is_valid():
        try:
            callback_settings_update(
                user=request.user,
                callback_url=form.cleaned_data["callback_url"],
                set_url=True,
                callback_enabled=form.cleaned_data["callback_enabled"],
            )
        except DomainError as exc:
            form.add_error("callback_url", exc.message)
        else:
            messages.success(request, _("Callback settings saved."))
            return redirect(reverse("account-api") + "#callback")
    return _api_page(request, callback_form=form)


@require_POST
@login_required
def callback_secret_rotate(request: SignedInRequest) -> HttpResponse:
    callback_settings_update(user=request.user, rotate_secret=True)
    messages.success(
        request,
        _("New signing secret issued. The old one keeps signing beside it for 24 hours."),
    )
    return redirect(reverse("account-api") + "#callback")


@require_POST
@login_required
def callback_test_send(request: SignedInRequest) -> HttpResponse:
    outcome: Outcome | None = None
    error = ""
    try:
        _, outcome = callback_test(buyer=request.user)
    except DomainError as exc:
        error = exc.message
    if request.htmx:
        context = {
            "outcome": outcome,
            "error": error,
            **_delivery_log(request.user, 1),
            "oob": True,
        }
        return render(request, "accounts/_callback_test_result.html", context)
    if outcome is None:
        messages.error(request, error)
    elif outcome.delivered:
        messages.success(
            request,
            _("Test callback delivered: HTTP %(code)s in %(ms)s ms.")
            % {"code": outcome.status_code, "ms": outcome.duration_ms},
        )
    else:
        messages.error(request, _("Test callback failed: %(error)s") % {"error": outcome.error})
    return redirect(reverse("account-api") + "#callback")


@require_POST
@login_required
def callback_resend_view(request: SignedInRequest, delivery_id: int) -> HttpResponse:
    try:
        callback_resend(buyer=request.user, delivery_id=delivery_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Callback %(id)s queued: it is sent again within seconds.") % {"id": delivery_id},
        )
    return redirect(reverse("account-api") + "#deliveries")


@login_required
def time_zone_settings(request: SignedInRequest) -> HttpResponse:
    """The zone every page shows times in (accounts.middleware activates it)."""
    form = TimeZoneForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(
            request, _("Times now show in %(zone)s.") % {"zone": form.cleaned_data["time_zone"]}
        )
        return redirect("account-time-zone")
    return render(request, "accounts/time_zone.html", {"form": form})
