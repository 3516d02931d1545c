"""Reseller pages: becoming a reseller, the agent key and the agent itself, live modems,
earnings, inbound SMS. Writes go through accounts.services; the reads live in
orders.dashboard (a modem's orders and earnings are order knowledge that the modems app
must not have)."""

from pathlib import Path

from django.conf import settings
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.forms import ConfirmForm
from accounts.models import ApiKey
from accounts.services import key_issue, reseller_enable
from accounts.views import SignedInRequest, login_required
from billing.services import wallet_balance
from orders.dashboard import inbound_sms, live_key, reseller_earnings, reseller_modems


def _enable_form(data: object = None) -> ConfirmForm:
    return ConfirmForm(data, label=_("I will connect my own modems and SIM cards."))


def _key_form(data: object = None) -> ConfirmForm:
    return ConfirmForm(
        data, label=_("I understand that my current agent key stops working at once.")
    )


AGENT_FILENAME = "zerotp-agent.pyz"


def _agent_size() -> int | None:
    """The size of the built agent in bytes, or None when `make agent` has not run."""
    try:
        return Path(settings.AGENT_PYZ).stat().st_size
    except OSError:
        return None


def _reseller_page(
    request: SignedInRequest,
    *,
    new_key: str | None = None,
    enable_form: ConfirmForm | None = None,
    key_form: ConfirmForm | None = None,
) -> HttpResponse:
    user = request.user
    context: dict[str, object] = {
        "share_percent": settings.RESELLER_SHARE_PERCENT,
        "online_seconds": settings.MODEM_ONLINE_SECONDS,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
        "new_key": new_key,
        "agent_filename": AGENT_FILENAME,
    }
    if user.is_reseller:
        context |= {
            "agent_key": live_key(user, ApiKey.Kind.AGENT),
            "key_form": key_form or _key_form(),
            "earnings": reseller_earnings(user),
            "balance": wallet_balance(user),
            "modems": list(reseller_modems(user)),
            "recent_sms": list(inbound_sms(user)[:8]),
            "agent_size": _agent_size(),
        }
    else:
        context["enable_form"] = enable_form or _enable_form()
    response = render(request, "modems/reseller.html", context)
    if new_key:
        add_never_cache_headers(response)  # a key shown once must not sit in any cache
    return response


@login_required
def reseller(request: SignedInRequest) -> HttpResponse:
    return _reseller_page(request)


@require_POST
@login_required
def reseller_enable_view(request: SignedInRequest) -> HttpResponse:
    if request.user.is_reseller:
        return redirect("reseller")
    form = _enable_form(request.POST)
    if not form.is_valid():
        return _reseller_page(request, enable_form=form)
    issued = reseller_enable(user=request.user)
    return _reseller_page(request, new_key=issued.key)


@require_POST
@login_required
def agent_key_regenerate(request: SignedInRequest) -> HttpResponse:
    if not request.user.is_reseller:
        return redirect("reseller")
    form = _key_form(request.POST)
    if not form.is_valid():
        return _reseller_page(request, key_form=form)
    issued = key_issue(user=request.user, kind=ApiKey.Kind.AGENT)
    return _reseller_page(request, new_key=issued.key)


@login_required
def modems_partial(request: SignedInRequest) -> HttpResponse:
    """The modems table, polled by htmx so that a heartbeat shows without a reload."""
    if not request.user.is_reseller:
        return redirect("reseller")
    modems = list(reseller_modems(request.user))
    return render(request, "modems/_modems_table.html", {"modems": modems})


@login_required
def sms_log(request: SignedInRequest) -> HttpResponse:
    if not request.user.is_reseller:
        return redirect("reseller")
    shown = request.GET.get("matched", "")
    matched = {"yes": True, "no": False}.get(shown)
    page = Paginator(inbound_sms(request.user, matched), 25).get_page(request.GET.get("page"))
    return render(request, "modems/sms.html", {"page": page, "shown": shown})


@login_required
def agent_download(request: SignedInRequest) -> HttpResponseBase:
    """The agent as one file (any Python 3.10+), built on this server by `make agent`."""
    try:
        agent = Path(settings.AGENT_PYZ).open("rb")
    except OSError:
        return render(request, "modems/agent_missing.html", status=404)
    return FileResponse(
        agent, as_attachment=True, filename=AGENT_FILENAME, content_type="application/zip"
    )
