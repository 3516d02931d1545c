"""The order page in a real browser (issue 18, part B): a price list with search and
favourites, a Buy button that says why it is off, active orders that keep the focus and
announce a code, times in the buyer's own zone, and the stock counting one's own order."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from playwright.sync_api import Page, expect

from orders.models import Application
from tests.factories import ApplicationFactory, finished_order, make_agent
from tests.web.conftest import PHONE, Account, Shoot, make_account
from tests.web.test_browser import agent_post, modem_online

pytestmark = pytest.mark.django_db(transaction=True)

LogIn = Callable[[Page, Account], None]


def app_names(page: Page) -> list[str]:
    return page.locator("label.app:visible .app-name").evaluate_all(
        "names => names.map(n => n.firstChild.textContent.trim())"
    )


def tab_hidden(page: Page, hidden: bool) -> None:
    """What the browser does when the buyer switches tabs away (or back)."""
    page.evaluate(
        """hidden => {
            Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def buy_whatsapp(page: Page) -> Any:
    page.get_by_role("button", name="Buy a number").click()
    card = page.locator("article.order")
    expect(card.locator("[data-number]")).to_have_count(1)
    return card


def test_the_order_page_lists_prices_and_stock_with_search_and_favourites_first(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    telegram = ApplicationFactory(name="Telegram", prices={"normal": 5000, "special": 8000})
    google = ApplicationFactory(name="Google", prices={"normal": 3000})
    now = datetime.now(UTC)
    finished_order(buyer_account.user, google, now - timedelta(days=2))
    finished_order(buyer_account.user, telegram, now - timedelta(days=1))
    modem_online(live_server, make_agent().key, "COM1", "628111000001")

    log_in(page, buyer_account)
    # The last used first, then the catalogue's order.
    assert app_names(page) == ["Telegram", "Google", "WhatsApp"]
    expect(page.locator("label.app", has_text="Telegram")).to_contain_text("used recently")
    expect(page.locator("label.app", has_text="WhatsApp")).not_to_contain_text("used recently")
    # Initials in a badge, every pool's price and stock in the row.
    whatsapp_row = page.locator("label.app", has_text="WhatsApp")
    expect(whatsapp_row.locator(".initials")).to_have_text("WA")
    expect(whatsapp_row.locator(".pool[data-operator='normal']")).to_have_text(
        "Normal Rp 3,500 · 1 in stock"
    )
    expect(whatsapp_row.locator(".pool[data-operator='promo']")).to_have_text(
        "Promo Rp 2,500 · out of stock"
    )
    expect(page.locator("label.app", has_text="Telegram")).to_contain_text("Special Rp 8,000")
    # The most recent favourite is picked; its pools show with their delivery figures.
    expect(page.get_by_role("radio", name=re.compile("^Telegram"))).to_be_checked()
    expect(page.locator("label.offer", has_text="Normal")).to_contain_text("Rp 5,000")
    expect(page.locator("label.offer", has_text="Normal")).to_contain_text(
        "no delivery figures yet"
    )
    shoot(page, "50-order-page")

    search = page.get_by_label("Search applications")
    search.fill("what")
    assert app_names(page) == ["WhatsApp"]
    search.fill("zzz")
    assert app_names(page) == []
    expect(page.get_by_text("No application matches your search.")).to_be_visible()
    search.fill("")
    assert app_names(page) == ["Telegram", "Google", "WhatsApp"]

    # Without JavaScript the search box submits: the server filters the list.
    page.goto(f"{live_server.url}/dashboard/?q=goo")
    assert app_names(page) == ["Google"]

    page.goto(f"{live_server.url}/dashboard/")
    page.locator("label.app", has_text="WhatsApp").click()
    expect(page.locator("label.offer", has_text="Normal")).to_contain_text("Rp 3,500")
    page.set_viewport_size(PHONE)
    expect(page.get_by_label("Search applications")).to_be_visible()


def test_buy_is_off_with_the_reason_at_rp_0_and_when_out_of_stock(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    modem_online(live_server, make_agent().key, "COM1", "628111000001")
    broke = make_account("kosong@example.com")
    log_in(page, broke)
    buy = page.get_by_role("button", name="Buy a number")
    expect(buy).to_be_disabled()
    top_up = page.get_by_role("link", name="Top up Rp 3,500 more")
    expect(top_up).to_have_attribute("href", "/topup/")
    expect(buy).to_have_accessible_description(re.compile("Top up Rp 3,500 more"))
    shoot(page, "51-order-page-balance-too-low")
    page.get_by_role("button", name="Log out").click()

    log_in(page, buyer_account)
    expect(buy).to_be_enabled()
    page.locator("label.offer", has_text="Promo").click()  # no modem serves promo
    expect(buy).to_be_disabled()
    expect(page.locator("#buy-reason")).to_have_text(
        "Out of stock: pick another operator or application."
    )
    shoot(page, "52-order-page-out-of-stock")
    page.locator("label.offer", has_text="Normal").click()
    expect(buy).to_be_enabled()
    expect(page.locator("#buy-reason")).to_have_count(0)


def test_the_focus_stays_on_cancel_while_the_orders_refresh(
    page: Page, live_server: Any, buyer_account: Account, whatsapp: Application, log_in: LogIn
) -> None:
    agent = make_agent()
    modem_online(live_server, agent.key, "COM1", "628111000001")
    log_in(page, buyer_account)
    card = buy_whatsapp(page)
    page.evaluate(
        """() => { window.__polls = 0;
                   document.addEventListener("htmx:afterRequest", () => window.__polls++); }"""
    )
    cancel = card.get_by_role("button", name="Cancel and refund")
    cancel.focus()
    page.wait_for_timeout(5_000)  # the panel polls every 2 s
    assert page.evaluate("window.__polls") >= 2
    assert page.evaluate("document.activeElement.textContent.trim()") == "Cancel and refund"
    assert page.evaluate("document.activeElement.closest('article').id") == card.get_attribute("id")
    expect(cancel).to_be_focused()

    # When the order itself changes (its code arrives), the focus stays on the same control.
    copy_number = card.get_by_role("button", name="Copy the number")
    copy_number.focus()
    agent_post(
        live_server,
        agent.key,
        "inbound-sms",
        {"uid": "COM1", "from": "WhatsApp", "text": "Kode WhatsApp Anda: 654-321."},
    )
    expect(card.locator("[data-otp]")).to_have_text("654321")
    expect(copy_number).to_be_focused()


def test_a_code_is_announced_and_counted_in_the_title_of_a_hidden_tab(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    agent = make_agent()
    modem_online(live_server, agent.key, "COM3", "628111234567")
    log_in(page, buyer_account)
    card = buy_whatsapp(page)
    card.get_by_role("button", name="Cancel and refund").focus()
    expect(page).to_have_title("Dashboard · ZeroTP")
    # The buyer switches to another tab.
    tab_hidden(page, True)
    agent_post(
        live_server,
        agent.key,
        "inbound-sms",
        {"uid": "COM3", "from": "WhatsApp", "text": "Kode WhatsApp Anda: 123-456."},
    )
    announcer = page.locator("#order-announcer")
    expect(announcer).to_have_text("Code 123456 arrived for WhatsApp")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(page).to_have_title("(1) Code arrived — ZeroTP")
    expect(card.locator("[data-otp]")).to_have_text("123456")
    # The Cancel button went with the code: the focus moved on to Finish.
    expect(card.get_by_role("button", name="Finish")).to_be_focused()
    shoot(page, "53-code-arrived")

    tab_hidden(page, False)
    expect(page).to_have_title("Dashboard · ZeroTP")


def test_times_show_in_the_buyers_zone_with_its_name(
    page: Page, live_server: Any, buyer_account: Account, whatsapp: Application, log_in: LogIn
) -> None:
    finished_order(buyer_account.user, whatsapp, datetime(2026, 12, 1, 7, 5, tzinfo=UTC))
    log_in(page, buyer_account)
    expect(page.get_by_role("link", name="Time zone: WIB")).to_be_visible()
    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.locator("tr[data-order] time")).to_have_text("01 Dec 2026 14:05 WIB")
    expect(page.locator("tr[data-order] time")).to_have_attribute("title", "Asia/Jakarta")
    page.get_by_role("link", name="Transactions", exact=True).click()
    expect(page.locator("tr[data-kind] time").first).to_have_text(re.compile(r" WIB$"))

    page.get_by_role("link", name="Time zone: WIB").click()
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Jakarta")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Save the time zone").click()
    expect(page.get_by_text("Times now show in Europe/Paris.")).to_be_visible()
    buyer_account.user.refresh_from_db()
    assert buyer_account.user.time_zone == "Europe/Paris"
    # The browser is still in Jakarta: the zone is the account's, applied by the server.
    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.locator("tr[data-order] time")).to_have_text("01 Dec 2026 08:05 CET")


def test_the_form_counts_the_buyers_own_order_at_once(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    settings: Any,
) -> None:
    settings.CATALOGUE_CACHE_SECONDS = 60  # a copy far older than the test
    cache.clear()
    modem_online(live_server, make_agent().key, "COM1", "628111000001")
    modem_online(live_server, make_agent().key, "COM2", "628111000002")
    log_in(page, buyer_account)
    normal = page.locator("label.offer", has_text="Normal")
    expect(normal).to_contain_text("2 in stock")
    buy_whatsapp(page)
    expect(page.get_by_text(re.compile(r"Order #\d+: your number is"))).to_be_visible()
    expect(normal).to_contain_text("1 in stock")
    expect(page.locator("label.app", has_text="WhatsApp")).to_contain_text(
        "Normal Rp 3,500 · 1 in stock"
    )
