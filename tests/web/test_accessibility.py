"""Every page checked by axe-core in the real browser, at desktop and phone width: no
serious or critical violation. axe's script comes from the axe-playwright-python wheel
(requirements-dev.txt), injected into the page: nothing is fetched at test time."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from django.conf import settings
from django.urls import reverse
from playwright.sync_api import Page

from billing.topups import topup_create
from modems.models import InboundSms
from orders.models import Application, CallbackDelivery
from orders.services import order_create, sms_receive
from tests.factories import ModemFactory, make_agent
from tests.web.conftest import DESKTOP, PHONE, Account, make_account

pytestmark = pytest.mark.django_db(transaction=True)

LogIn = Callable[[Page, Account], None]


@pytest.fixture
def page(new_context: Callable[..., Any]) -> Page:
    # The pages' CSP (rightly) refuses an inline script; this context lets axe's in.
    return new_context(bypass_csp=True).new_page()


AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
BLOCKING = ("serious", "critical")


def blocking_violations(page: Page) -> list[str]:
    """axe's serious and critical violations of the page as it stands, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]


def check_pages(page: Page, base: str, paths: list[str], language: str | None = None) -> None:
    problems = []
    for path in paths:
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.goto(base + path)
            if language:
                assert page.locator("html").get_attribute("lang") == language, path
            problems += [f"{path} [{label}] {line}" for line in blocking_violations(page)]
    page.set_viewport_size(DESKTOP)
    assert not problems, "\n".join(problems)


def test_the_axe_check_finds_a_violation_where_there_is_one(page: Page, live_server: Any) -> None:
    # The check itself can fail: an unlabelled field and grey-on-white text are caught.
    page.goto(live_server.url + reverse("login"))
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        ' \'<input type="text"><p style="color:#ccc;background:#fff">faint</p>\')'
    )
    found = "\n".join(blocking_violations(page))
    assert "label" in found and "color-contrast" in found


def test_the_public_pages_have_no_serious_violation(
    page: Page, live_server: Any, whatsapp: Application
) -> None:
    paths = [
        reverse("landing"),
        reverse("login"),
        reverse("signup"),
        reverse("password_reset"),
        reverse("password_reset_done"),
        "/no-such-page/",
    ]
    check_pages(page, live_server.url, paths)


def test_the_buyer_pages_have_no_serious_violation(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
) -> None:
    topup = topup_create(user=buyer_account.user, amount=100_000, provider="manual")
    # Pages with rows in them: a code received (Finish, the active order) and its callback.
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    order_create(buyer=buyer_account.user, application_id=whatsapp.pk)
    sms_receive(reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Code 123456")
    CallbackDelivery.objects.create(
        buyer=buyer_account.user,
        event=CallbackDelivery.Event.OTP_RECEIVED,
        webhook_id="msg_accessibility",
        body='{"otp_code": "123456"}',
        status=CallbackDelivery.Status.FAILED,
        attempts=8,
    )
    log_in(page, buyer_account)
    paths = [
        reverse("dashboard"),
        reverse("order-history"),
        reverse("transactions"),
        reverse("account-api"),
        reverse("topup"),
        reverse("topup-detail", args=[topup.pk]),
        reverse("password_change"),
        reverse("account-time-zone"),
        reverse("reseller"),  # "become a reseller"
        reverse("staff-overview"),  # 403 for a buyer
    ]
    check_pages(page, live_server.url, paths)


def test_the_reseller_pages_have_no_serious_violation(
    page: Page, live_server: Any, log_in: LogIn
) -> None:
    reseller = make_account("pool@example.com", reseller=True)
    modem = ModemFactory(reseller=reseller.user, uid="COM3")
    InboundSms.objects.create(
        modem=modem, reseller=reseller.user, sender="WhatsApp", text="Kode 123456"
    )
    log_in(page, reseller)
    paths = [
        reverse("reseller"),
        reverse("reseller-sms"),
        reverse("reseller-numbers"),
        reverse("withdrawals"),
    ]
    check_pages(page, live_server.url, paths)


def test_the_staff_pages_have_no_serious_violation(
    page: Page, live_server: Any, staff_account: Account, log_in: LogIn
) -> None:
    log_in(page, staff_account)
    paths = [
        reverse("staff-overview"),
        reverse("staff-numbers"),
        reverse("finance"),
        reverse("admin:index"),
    ]
    check_pages(page, live_server.url, paths)


def test_the_pages_in_indonesian_have_no_serious_violation(
    new_context: Callable[..., Any],
    live_server: Any,
    buyer_account: Account,
    staff_account: Account,
    whatsapp: Application,
    log_in: LogIn,
) -> None:
    # Longer words, other labels: the dashboard with an order, the reseller page and the
    # admin (its index and a list with a row) read in Indonesian.
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    order_create(buyer=buyer_account.user, application_id=whatsapp.pk)
    sms_receive(reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Code 123456")
    reseller = make_account("pool@example.com", reseller=True)
    own_modem = ModemFactory(reseller=reseller.user, uid="COM3")
    InboundSms.objects.create(
        modem=own_modem, reseller=reseller.user, sender="WhatsApp", text="Kode 123456"
    )
    visits = (
        (buyer_account, [reverse("dashboard")]),
        (reseller, [reverse("reseller")]),
        (staff_account, [reverse("admin:index"), reverse("admin:orders_order_changelist")]),
    )
    for account, paths in visits:
        page = new_context(bypass_csp=True).new_page()
        log_in(page, account)
        page.context.add_cookies(
            [{"name": settings.LANGUAGE_COOKIE_NAME, "value": "id", "url": live_server.url}]
        )
        check_pages(page, live_server.url, paths, language="id")
