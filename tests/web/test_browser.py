"""The dashboard in a real browser: Debian's chromium driven by Playwright against the live
server. Things happen the way they do in production: the agent posts through the HTTP API,
staff top up through the admin, and the pages change without a reload."""

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect
from standardwebhooks.webhooks import Webhook

from accounts.models import ApiKey
from billing.services import wallet_balance
from orders.models import Application, Order, OrderStatus
from tests.factories import ModemFactory, make_agent
from tests.receiver import running_receiver
from tests.web.conftest import DESKTOP, PHONE, Account, Shoot, make_account

pytestmark = pytest.mark.django_db(transaction=True)

LogIn = Callable[[Page, Account], None]


def agent_post(live_server: Any, key: str, endpoint: str, body: dict) -> dict:
    response = requests.post(
        f"{live_server.url}/api/modem/{endpoint}",
        json=body,
        headers={"X-AGENT-KEY": key},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def modem_online(live_server: Any, agent_key: str, uid: str, number: str) -> None:
    """What a Modempool agent does first: sync the modem, then a heartbeat."""
    agent_post(
        live_server,
        agent_key,
        "sync",
        {
            "modems": [
                {
                    "uid": uid,
                    "phone_number": number,
                    "provider": "Telkomsel",
                    "signal": 80,
                    "mapping": "normal",
                }
            ]
        },
    )
    agent_post(
        live_server,
        agent_key,
        "heartbeat",
        {"modems": [{"uid": uid, "signal": 78, "can_order": True}]},
    )


def mark_no_reload(page: Page) -> None:
    page.evaluate("window.__sameDocument = true")


def assert_no_reload(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def test_a_visitor_signs_up_and_finds_an_empty_dashboard(
    page: Page, live_server: Any, whatsapp: Application, shoot: Shoot, screenshot_dir: Path
) -> None:
    page.goto(live_server.url)
    expect(page.get_by_role("heading", name="Receive verification codes")).to_be_visible()
    expect(page.locator(".service", has_text="WhatsApp")).to_contain_text("Rp 3,500")
    shoot(page, "01-landing")

    page.get_by_role("link", name="Create a free account").click()
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.get_by_label("Email").fill("Sari@Example.com")
    page.get_by_label("Password", exact=True).fill("kopi susu 2026")
    page.get_by_label("Password again").fill("kopi susu 2025")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    shoot(page, "02-signup-error")

    page.get_by_label("Password", exact=True).fill("kopi susu 2026")
    page.get_by_label("Password again").fill("kopi susu 2026")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Welcome to ZeroTP!")).to_be_visible()
    expect(page.locator("#balance")).to_have_text("Rp 0")
    expect(page.get_by_text("No active orders.")).to_be_visible()
    shoot(page, "03-dashboard-new-account")

    page.set_viewport_size(PHONE)
    menu = page.get_by_role("button", name="Menu")
    expect(page.get_by_role("link", name="Transactions", exact=True)).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("link", name="Transactions", exact=True)).to_be_visible()
    page.screenshot(path=screenshot_dir / "03-phone-menu-open-phone.png")
    page.set_viewport_size(DESKTOP)

    page.get_by_role("link", name="sari@example.com").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    shoot(page, "04-password-change")
    page.get_by_label("Old password").fill("kopi susu 2026")
    page.get_by_label("New password", exact=True).fill("teh manis 2027")
    page.get_by_label("New password confirmation").fill("teh manis 2027")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    shoot(page, "04-password-change-done")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Create a free account")).to_be_visible()
    page.get_by_role("link", name="Log in").first.click()
    shoot(page, "05-login")


def test_a_forgotten_password_is_reset_through_the_mailed_link(
    page: Page, live_server: Any, buyer_account: Account, log_in: LogIn, shoot: Shoot
) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Forgot your password?").first.click()
    shoot(page, "06-password-reset-form")
    page.get_by_label("Email").fill(buyer_account.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    shoot(page, "06-password-reset-sent")
    link = re.search(r"https?://\S+/password/reset/\S+/", mail.outbox[0].body).group(0)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill("a much newer secret")
    page.get_by_label("New password confirmation").fill("a much newer secret")
    shoot(page, "07-password-reset-choose")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("heading", name="Password saved")).to_be_visible()
    shoot(page, "07-password-reset-complete")
    buyer_account.password = "a much newer secret"
    log_in(page, buyer_account)


def test_staff_top_up_a_buyer_in_the_admin_and_the_buyer_sees_it(
    new_context: Callable[..., Any],
    live_server: Any,
    staff_account: Account,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    buyer = make_account("budi@example.com")
    staff = new_context().new_page()
    log_in(staff, staff_account)
    staff.get_by_role("link", name="Staff", exact=True).click()
    expect(staff.get_by_role("heading", name="Staff overview")).to_be_visible()
    shoot(staff, "08-staff-overview")

    staff.get_by_role("link", name="Admin", exact=True).click()
    staff.goto(f"{live_server.url}/admin/accounts/user/")
    staff.get_by_role("link", name=buyer.email).click()
    staff.get_by_role("link", name="Adjust the balance").click()
    staff.get_by_label("Amount (rupiah)").fill("25000")
    staff.get_by_label("Note").fill("bank transfer 27/11")
    staff.get_by_role("button", name="Adjust through the ledger").click()
    expect(staff.get_by_text("the balance is Rp 25,000")).to_be_visible()
    assert wallet_balance(buyer.user) == 25_000

    page = new_context().new_page()
    log_in(page, buyer)
    expect(page.locator("#balance")).to_have_text("Rp 25,000")
    page.get_by_role("link", name="Transactions", exact=True).click()
    expect(page.locator("tr[data-kind='adjustment']")).to_contain_text("bank transfer 27/11")
    expect(page.locator("tr[data-kind='adjustment']")).to_contain_text("+Rp 25,000")


def test_a_buyer_orders_a_number_the_code_appears_by_itself_then_finishes(
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
    expect(page.locator("#balance")).to_have_text("Rp 10,000")
    page.locator("label.app", has_text="WhatsApp").click()
    offer = page.locator("label.offer", has_text="Normal")
    expect(offer).to_contain_text("Rp 3,500")
    expect(offer).to_contain_text("1 in stock")
    shoot(page, "10-dashboard-order-form")
    offer.click()
    page.get_by_role("button", name="Buy a number").click()

    card = page.locator("article.order")
    expect(card.locator("[data-number]")).to_have_text("628111234567")
    expect(card).to_contain_text("Waiting for the SMS")
    expect(card.locator(".countdown")).to_have_text(re.compile(r"^(20:00|19:\d\d)$"))
    expect(page.locator("#balance")).to_have_text("Rp 6,500")
    expect(card.get_by_role("button", name="Finish")).to_have_count(0)  # no SMS yet
    shoot(page, "11-dashboard-waiting-for-sms")

    mark_no_reload(page)
    answer = agent_post(
        live_server,
        agent.key,
        "inbound-sms",
        {
            "uid": "COM3",
            "phone_number": "628111234567",
            "from": "WhatsApp",
            "text": "Kode WhatsApp Anda: 123-456. Jangan bagikan kode ini.",
        },
    )
    assert answer["matched"] and answer["otp"] == "123456"
    expect(card.locator("[data-otp]")).to_have_text("123456")
    expect(card).to_contain_text("Jangan bagikan kode ini")
    expect(card.get_by_role("button", name="Cancel and refund")).to_have_count(0)
    assert_no_reload(page)
    shoot(page, "12-dashboard-code-arrived")

    card.get_by_role("button", name="Copy the code").click()
    expect(card.get_by_role("button", name="Copy the code")).to_have_text("Copied")

    card.get_by_role("button", name="Finish").click()
    expect(page.get_by_text(re.compile(r"Order #\d+ finished"))).to_be_visible()
    expect(page.locator("article.order")).to_have_count(0)
    assert Order.objects.get().status == OrderStatus.FINISHED

    page.get_by_role("link", name="Orders", exact=True).click()
    row = page.locator("tr[data-order]")
    expect(row).to_contain_text("123456")
    expect(row).to_contain_text("Finished")
    shoot(page, "13-order-history")


def test_cancel_refunds_and_the_balance_on_the_page_changes(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    agent = make_agent()
    modem_online(live_server, agent.key, "COM4", "628122223333")
    log_in(page, buyer_account)
    page.get_by_role("button", name="Buy a number").click()
    card = page.locator("article.order")
    expect(card.locator("[data-number]")).to_have_text("628122223333")
    expect(page.locator("#balance")).to_have_text("Rp 6,500")

    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    card.get_by_role("button", name="Cancel and refund").click()
    expect(
        page.get_by_text(re.compile(r"cancelled: Rp 3,500 is back in your balance"))
    ).to_be_visible()
    expect(page.locator("#balance")).to_have_text("Rp 10,000")
    expect(page.locator("article.order")).to_have_count(0)
    assert questions and "Rp 3,500 goes back to your balance" in questions[0]
    assert wallet_balance(buyer_account.user) == 10_000

    page.get_by_role("link", name="Transactions", exact=True).click()
    expect(page.locator("tr[data-kind='release']")).to_contain_text("+Rp 3,500")
    expect(page.locator("tr[data-kind='hold']")).to_contain_text("-Rp 3,500")
    shoot(page, "14-transactions")


def test_out_of_stock_is_refused_clearly(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    log_in(page, buyer_account)
    expect(page.locator("label.offer", has_text="Normal")).to_contain_text("out of stock")
    buy = page.get_by_role("button", name="Buy a number")
    expect(buy).to_be_disabled()
    # The disabled button is a convenience: the server refuses such an order all the same.
    buy.evaluate("button => button.removeAttribute('disabled')")
    buy.click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Out of stock.")
    expect(alert).to_contain_text("No normal number is available for WhatsApp right now")
    expect(page.locator("#balance")).to_have_text("Rp 10,000")
    shoot(page, "15-dashboard-out-of-stock")


def test_the_balance_follows_an_expiry_refund_without_a_reload(
    page: Page, live_server: Any, buyer_account: Account, whatsapp: Application, log_in: LogIn
) -> None:
    from orders.services import orders_expire

    agent = make_agent()
    modem_online(live_server, agent.key, "COM5", "628133334444")
    log_in(page, buyer_account)
    page.get_by_role("button", name="Buy a number").click()
    expect(page.locator("#balance")).to_have_text("Rp 6,500")
    mark_no_reload(page)
    Order.objects.update(expires_at=Order.objects.get().created_at)
    orders_expire()  # what the job queue does every minute
    expect(page.locator("#balance")).to_have_text("Rp 10,000")
    expect(page.locator("article.order")).to_have_count(0)
    assert_no_reload(page)


def test_api_key_regeneration_shows_the_new_key_once(
    page: Page, live_server: Any, buyer_account: Account, log_in: LogIn, shoot: Shoot
) -> None:
    log_in(page, buyer_account)
    page.get_by_role("link", name="API & Callback").click()
    old = ApiKey.objects.get(user=buyer_account.user, kind="api")
    expect(page.locator("#masked-api-key")).to_have_text(old.masked)
    expect(page.locator("pre").first).to_contain_text(f"BASE={live_server.url}")
    shoot(page, "20-api-and-callback")

    page.get_by_role("button", name="Generate a new key").click()
    expect(page.get_by_text("Tick the box to confirm.")).to_be_visible()
    page.get_by_label("I understand that my current API key stops working at once.").check()
    page.get_by_role("button", name="Generate a new key").click()
    new_key = page.locator("#new-api-key").inner_text()
    assert new_key.startswith("ztp_live_") and new_key != buyer_account.api_key
    expect(page.locator("#masked-api-key")).to_have_text(f"ztp_live_…{new_key[-4:]}")
    shoot(page, "21-api-new-key-shown-once")

    balance = f"{live_server.url}/api/v1/balance"
    assert requests.get(balance, headers={"X-API-KEY": new_key}, timeout=10).json() == {
        "balance": 10_000,
        "currency": "IDR",
    }
    old_answer = requests.get(balance, headers={"X-API-KEY": buyer_account.api_key}, timeout=10)
    assert old_answer.status_code == 401

    page.get_by_role("link", name="API & Callback").click()
    expect(page.locator("#masked-api-key")).to_have_text(f"ztp_live_…{new_key[-4:]}")
    assert new_key not in page.content()


def test_callback_settings_refuse_a_private_url_save_and_the_test_shows_its_result(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    log_in: LogIn,
    settings: Any,
    shoot: Shoot,
) -> None:
    settings.CALLBACK_ALLOW_PRIVATE = False
    log_in(page, buyer_account)
    page.goto(f"{live_server.url}/account/api/")
    page.get_by_label("Callback URL").fill("http://127.0.0.1:9/otp")
    page.get_by_role("button", name="Save callback settings").click()
    expect(page.locator("#id_callback_url_error")).to_contain_text(
        "resolves to a private, loopback or reserved address"
    )
    shoot(page, "22-callback-private-url-refused")

    settings.CALLBACK_ALLOW_PRIVATE = True  # the test receiver listens on loopback
    with running_receiver() as receiver:
        page.get_by_label("Callback URL").fill(receiver.url)
        page.get_by_label("Send callbacks").check()
        page.get_by_role("button", name="Save callback settings").click()
        expect(page.get_by_text("Callback settings saved.")).to_be_visible()
        expect(page.get_by_label("Callback URL")).to_have_value(receiver.url)

        mark_no_reload(page)
        page.get_by_role("button", name="Send a test callback").click()
        outcome = page.locator("#callback-test-outcome")
        expect(outcome).to_contain_text("Test callback delivered: HTTP 200")
        row = page.locator("#delivery-log tr[data-delivery]")
        expect(row).to_contain_text("test")
        expect(row).to_contain_text("Delivered")
        assert_no_reload(page)
        shoot(page, "23-callback-test-delivered")

        assert len(receiver.requests) == 1
        buyer_account.user.refresh_from_db()
        body = Webhook(buyer_account.user.callback_secret).verify(
            receiver.requests[0].body, receiver.requests[0].headers
        )
        assert body["status"] == "test"


def test_a_reseller_gets_the_agent_key_once_and_sees_a_modem_come_online(
    page: Page, live_server: Any, buyer_account: Account, log_in: LogIn, shoot: Shoot
) -> None:
    log_in(page, buyer_account)
    page.get_by_role("link", name="Reseller").click()
    expect(page.get_by_role("heading", name="Earn with your modems and SIM cards")).to_be_visible()
    shoot(page, "30-reseller-become")
    page.get_by_label("I will connect my own modems and SIM cards.").check()
    page.get_by_role("button", name="Become a reseller").click()
    agent_key = page.locator("#new-agent-key").inner_text()
    assert agent_key.startswith("ztp_agent_")
    expect(page.get_by_text("No modems yet.")).to_be_visible()
    expect(page.locator("#agent-command")).to_have_text(
        f"python zerotp-agent.pyz run --server {live_server.url} --agent-key {agent_key}"
    )
    shoot(page, "31-reseller-agent-key-shown-once")

    mark_no_reload(page)
    agent_post(
        live_server,
        agent_key,
        "sync",
        {
            "modems": [
                {
                    "uid": "COM9",
                    "phone_number": "0812-3456-7890",
                    "provider": "XL",
                    "signal": 55,
                    "mapping": "promo",
                }
            ]
        },
    )
    row = page.locator("tr[data-modem='COM9']")
    expect(row).to_contain_text("6281234567890")
    expect(row.locator("[data-online]")).to_have_text("offline")
    agent_post(live_server, agent_key, "heartbeat", {"modems": [{"uid": "COM9", "signal": 71}]})
    expect(row.locator("[data-online]")).to_have_text("online")
    expect(row).to_contain_text("71%")
    assert_no_reload(page)

    agent_post(
        live_server,
        agent_key,
        "inbound-sms",
        {"uid": "COM9", "from": "XL", "text": "Sisa kuota Anda 2 GB."},
    )
    page.get_by_role("link", name="Reseller").click()
    assert agent_key not in page.content()
    expect(page.locator("#masked-agent-key")).to_have_text(f"ztp_agent_…{agent_key[-4:]}")
    shoot(page, "32-reseller-modems-online")

    page.get_by_role("link", name="All SMS").click()
    expect(page.locator("tr[data-sms]")).to_contain_text("unmatched")
    shoot(page, "33-reseller-inbound-sms")


def test_the_language_switcher_shows_the_site_in_indonesian(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    page.goto(live_server.url)
    page.get_by_role("button", name="Bahasa Indonesia").click()
    expect(page.get_by_role("heading", name="Cara kerjanya")).to_be_visible()
    expect(page.locator(".service", has_text="WhatsApp")).to_contain_text("Rp 3.500")
    shoot(page, "40-landing-indonesian")
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(buyer_account.email)
    page.get_by_label("Kata sandi").fill(buyer_account.password)
    page.get_by_role("button", name="Masuk").click()
    expect(page.get_by_text("Saldo Anda", exact=True)).to_be_visible()
    expect(page.locator("#balance")).to_have_text("Rp 10.000")
    shoot(page, "41-dashboard-indonesian")


def test_the_order_form_and_the_services_list_show_how_each_pool_delivers(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    """Issue 19: beside each pool's price, the share of the last day's orders that got a
    code and the median time to it; a pool below the sample says it has no figures yet."""
    agent = make_agent()
    for n, seconds in enumerate([12, 18, 25, 31, 38, 44, 52, 66, 80, 95] * 2 + [None] * 5):
        created = timezone.now() - timedelta(minutes=30)
        order = Order.objects.create(
            buyer=buyer_account.user,
            application=whatsapp,
            operator="normal",
            modem=ModemFactory(reseller=agent.user, last_heartbeat_at=None),
            reseller=agent.user,
            phone_number=f"62877{n:07d}",
            price=3500,
            created_at=created,
            expires_at=created + timedelta(minutes=20),
        )
        Order.objects.filter(pk=order.pk).update(
            status=OrderStatus.EXPIRED if seconds is None else OrderStatus.COMPLETED,
            completed_at=None if seconds is None else created + timedelta(seconds=seconds),
        )

    log_in(page, buyer_account)
    page.locator("label.app", has_text="WhatsApp").click()
    normal = page.locator("label.offer", has_text="Normal")
    expect(normal).to_contain_text("80% got a code · ~40 s")
    expect(page.locator("label.offer", has_text="Promo")).to_contain_text("no delivery figures yet")
    shoot(page, "14-order-form-deliverability")

    page.goto(f"{live_server.url}/api/v1/services")
    expect(page.locator("body")).to_contain_text("success_rate")
    shoot(page, "15-services-list-deliverability")
