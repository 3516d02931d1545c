"""Issue 18's dead ends and rough edges, in the real browser: the header's contrast,
amounts and messages in the reader's language, the first API key, Finish in the history,
the callback log that follows its deliveries, where a reseller lands, the error pages and
the favicon, and wide tables on a phone."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from django.template import loader
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import ApiKey, User
from billing.adjustments import balance_adjust
from billing.topups import topup_create
from modems.models import Modem
from orders.callbacks import callback_send
from orders.models import Application, CallbackDelivery
from orders.services import order_create, sms_receive
from tests.factories import ModemFactory, make_agent
from tests.receiver import running_receiver
from tests.web.conftest import DESKTOP, PHONE, Account, Shoot, make_account

pytestmark = pytest.mark.django_db(transaction=True)

LogIn = Callable[[Page, Account], None]


def contrast(foreground: str, background: str) -> float:
    """WCAG's contrast ratio of two computed `rgb(r, g, b)` colours."""

    def luminance(colour: str) -> float:
        channels = [int(c) / 255 for c in colour[colour.index("(") + 1 : -1].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def colours(page: Page, selector: str) -> tuple[str, str]:
    return page.eval_on_selector(
        selector,
        "e => { const s = getComputedStyle(e); return [s.color, s.backgroundColor]; }",
    )


def order_in_the_form(page: Page, application: str, buy: str = "Buy a number") -> None:
    page.locator("label.app", has_text=application).click()
    page.locator("label.offer", has_text="Normal").click()
    page.get_by_role("button", name=buy).click()


def adjust(account: Account, amount: int) -> None:
    """Staff move the balance while the buyer's page is open (the form judged it before)."""
    balance_adjust(user=account.user, amount=amount, note="test", staff=None)


def test_the_header_sign_up_button_keeps_its_contrast_when_hovered(
    page: Page, live_server: Any, shoot: Shoot
) -> None:
    page.goto(live_server.url)
    button = "header a.btn[href='/signup/']"
    resting = contrast(*colours(page, button))
    page.hover(button)
    page.wait_for_timeout(300)  # any transition has run
    hovered = contrast(*colours(page, button))
    assert resting >= 4.5 and hovered >= 4.5, (resting, hovered)
    shoot(page, "50-header-sign-up")


def test_a_short_balance_reads_in_the_readers_language_with_formatted_amounts(
    page: Page,
    live_server: Any,
    whatsapp: Application,
    online_modem: Modem,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    buyer = make_account("poor@example.com", balance=4000)
    log_in(page, buyer)
    adjust(buyer, -3000)  # the server refuses what the page still offers
    order_in_the_form(page, "WhatsApp")
    alert = page.locator(".alert-error, .errorlist").first
    expect(alert).to_contain_text("Your balance is Rp 1,000; the price is Rp 3,500.")
    expect(page.locator("#buy-reason")).to_contain_text("Top up Rp 2,500 more")
    shoot(page, "63-short-balance-english")

    page.get_by_role("button", name="Bahasa Indonesia").click()
    expect(page.locator("#buy-reason")).to_contain_text("Isi saldo Rp 2.500 lagi")
    adjust(buyer, 3000)
    page.reload()
    adjust(buyer, -3000)
    order_in_the_form(page, "WhatsApp", buy="Beli nomor")
    alert = page.locator(".alert-error, .errorlist").first
    expect(alert).to_contain_text("Saldo tidak cukup: isi saldo dulu.")
    expect(alert).to_contain_text("Saldo Anda Rp 1.000; harganya Rp 3.500.")
    expect(alert).not_to_contain_text("below")  # no English tail on an Indonesian page
    shoot(page, "64-short-balance-indonesian")


def test_out_of_stock_reads_wholly_in_indonesian(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    online_modem: Modem,
    log_in: LogIn,
) -> None:
    log_in(page, buyer_account)
    page.get_by_role("button", name="Bahasa Indonesia").click()
    Modem.objects.filter(pk=online_modem.pk).update(disabled=True)  # the last number goes
    order_in_the_form(page, "WhatsApp", buy="Beli nomor")
    alert = page.locator(".alert-error, .errorlist").first
    expect(alert).to_contain_text("Stok habis.")
    expect(alert).to_contain_text("Tidak ada nomor normal yang tersedia untuk WhatsApp")
    expect(alert).not_to_contain_text("available")


def test_a_new_account_creates_its_first_api_key_without_a_warning_and_sees_it_once(
    page: Page, live_server: Any, shoot: Shoot
) -> None:
    page.goto(f"{live_server.url}/signup/")
    page.get_by_label("Email").fill("first@example.com")
    page.get_by_label("Password", exact=True).fill("kopi susu 2026")
    page.get_by_label("Password again").fill("kopi susu 2026")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("Welcome to ZeroTP!")).to_be_visible()
    user = User.objects.get(email="first@example.com")
    assert not ApiKey.objects.filter(user=user).exists()

    page.get_by_role("link", name="API & Callback").click()
    expect(page.get_by_text("You have no API key yet.")).to_be_visible()
    expect(page.get_by_role("checkbox")).to_have_count(1)  # only "Send callbacks"
    expect(page.get_by_text("stops working")).to_have_count(0)
    shoot(page, "53-api-first-key")
    page.get_by_role("button", name="Create your API key").click()
    expect(page.get_by_role("heading", name="Your API key", exact=True)).to_be_visible()
    expect(page.get_by_text("The previous key no longer works.")).to_have_count(0)
    key = page.locator("#new-api-key").inner_text()
    assert key.startswith("ztp_live_")
    shoot(page, "54-api-first-key-shown")

    balance = requests.get(
        f"{live_server.url}/api/v1/balance", headers={"X-API-KEY": key}, timeout=10
    )
    assert balance.status_code == 200 and balance.json()["balance"] == 0
    page.reload()
    expect(page.locator("#new-api-key")).to_have_count(0)  # shown once
    expect(page.get_by_role("button", name="Generate a new key")).to_be_visible()


def test_a_completed_order_is_finished_from_the_history(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    agent = make_agent()
    modem = ModemFactory(reseller=agent.user)
    done = order_create(buyer=buyer_account.user, application_id=whatsapp.pk).order
    sms_receive(reseller=agent.user, uid=modem.uid, sender="WhatsApp", text="Code 123456")
    log_in(page, buyer_account)
    page.goto(f"{live_server.url}/orders/")
    row = page.locator(f"tr[data-order='{done.pk}']")
    expect(row).to_contain_text("Code received")
    shoot(page, "55-history-finish")
    row.get_by_role("button", name="Finish").click()
    expect(page.get_by_text(f"Order #{done.pk} finished.")).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/orders/")  # back where the buyer was
    expect(row).to_contain_text("Finished")
    expect(row.get_by_role("button", name="Finish")).to_have_count(0)


def test_the_callback_log_shows_each_payload_and_follows_a_resend_without_a_reload(
    page: Page, live_server: Any, buyer_account: Account, settings: Any, log_in: LogIn, shoot: Shoot
) -> None:
    settings.CALLBACK_ALLOW_PRIVATE = True  # the test receiver listens on loopback
    body = json.dumps({"order_id": 41, "otp_code": "123456", "status": "completed"})
    delivery = CallbackDelivery.objects.create(
        buyer=buyer_account.user,
        event=CallbackDelivery.Event.OTP_RECEIVED,
        webhook_id=f"msg_{uuid.uuid4().hex}",
        body=body,
        status=CallbackDelivery.Status.FAILED,
        attempts=8,
    )
    with running_receiver() as receiver:
        User.objects.filter(pk=buyer_account.user.pk).update(
            callback_url=receiver.url, callback_enabled=True
        )
        log_in(page, buyer_account)
        page.goto(f"{live_server.url}/account/api/")
        row = page.locator(f"#delivery-log tr[data-delivery='{delivery.pk}']")
        expect(row).to_contain_text("Failed")
        expect(page.locator("#delivery-log")).to_have_attribute("data-refreshing", "false")
        row.get_by_text("Show the JSON").click()
        expect(row.locator("details.payload pre")).to_have_text(body)
        shoot(page, "56-callback-payload")

        row.get_by_role("button", name="Resend").click()
        expect(row).to_contain_text("Pending")
        page.evaluate("window.__sameDocument = true")
        # What the job queue's worker does with the queued resend.
        assert callback_send(delivery_id=delivery.pk, now=timezone.now())
        expect(row).to_contain_text("Delivered")
        expect(page.locator("#delivery-log")).to_have_attribute("data-refreshing", "false")
        assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        assert len(receiver.requests) == 1


def test_a_reseller_lands_on_the_reseller_page_and_next_still_wins(
    page: Page, live_server: Any, reseller_account: Account
) -> None:
    def log_in_to(url: str) -> None:
        page.goto(url)
        page.get_by_label("Email").fill(reseller_account.email)
        page.get_by_label("Password").fill(reseller_account.password)
        page.get_by_role("button", name="Log in").click()

    log_in_to(f"{live_server.url}/login/")
    expect(page.get_by_role("heading", name="Reseller", exact=True)).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/reseller/")
    page.get_by_role("button", name="Log out").click()
    log_in_to(f"{live_server.url}/login/?next=/transactions/")
    expect(page).to_have_url(f"{live_server.url}/transactions/")


def test_error_pages_are_styled_and_every_page_has_the_favicon(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    staff_account: Account,
    log_in: LogIn,
    new_context: Callable[..., Any],
    shoot: Shoot,
) -> None:
    log_in(page, buyer_account)
    answer = page.goto(f"{live_server.url}/staff/")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("heading", name="This page is not for your account")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()  # the site's layout
    shoot(page, "57-forbidden")
    answer = page.goto(f"{live_server.url}/no-such-page/")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    shoot(page, "58-not-found")
    # Django's other 403, a form without its CSRF token, and the 500 page stand styled too.
    refused = requests.post(f"{live_server.url}/login/", data={"email": "x"}, timeout=10)
    assert refused.status_code == 403 and "The form had expired" in refused.text
    assert 'class="site-header"' in refused.text
    assert "favicon.svg" in loader.get_template("500.html").render({})

    staff = new_context().new_page()
    log_in(staff, staff_account)
    for where in (page, staff):
        for path in ("/", "/admin/") if where is staff else ("/", "/no-such-page/"):
            where.goto(live_server.url + path)
            icon = where.locator("link[rel='icon']")
            expect(icon).to_have_attribute("href", "/static/img/favicon.svg")
            served = requests.get(live_server.url + "/static/img/favicon.svg", timeout=10)
            assert served.status_code == 200 and b"<svg" in served.content


def test_wide_tables_fit_their_cards_on_a_phone_and_the_staff_overview_at_desktop(
    page: Page,
    live_server: Any,
    staff_account: Account,
    whatsapp: Application,
    log_in: LogIn,
    new_context: Callable[..., Any],
    shoot: Shoot,
) -> None:
    reseller = make_account("pool@example.com", reseller=True)
    modem = ModemFactory(reseller=reseller.user, uid="COM12-LONG-NAME")
    buyer = make_account("a-rather-long-address.of.a.buyer@example.com", balance=10_000)
    order_create(buyer=buyer.user, application_id=whatsapp.pk)
    sms_receive(
        reseller=reseller.user, uid=modem.uid, sender="WhatsApp", text="Kode WhatsApp 123456"
    )
    page.set_viewport_size(PHONE)
    log_in(page, reseller)
    card = page.locator("section", has=page.get_by_role("heading", name="Latest inbound SMS"))
    matched = card.locator("td[data-label='Matched']").first
    expect(matched).to_be_visible()
    card_box, cell_box = card.bounding_box(), matched.bounding_box()
    assert card_box and cell_box
    assert cell_box["x"] + cell_box["width"] <= card_box["x"] + card_box["width"]
    shoot(page, "59-reseller-latest-sms-phone")

    # Failed callbacks: a real one counts, a failed test of the buyer's URL does not.
    for event in (CallbackDelivery.Event.OTP_RECEIVED, CallbackDelivery.Event.TEST):
        CallbackDelivery.objects.create(
            buyer=buyer.user,
            event=event,
            webhook_id=f"msg_{uuid.uuid4().hex}",
            body="{}",
            status=CallbackDelivery.Status.FAILED,
            attempts=8,
        )
    staff = new_context().new_page()
    staff.set_viewport_size(DESKTOP)
    log_in(staff, staff_account)
    staff.goto(f"{live_server.url}/staff/")
    expect(staff.locator("#callbacks-failed")).to_have_text("1")
    table = staff.locator("section", has_text="Latest failed callbacks").locator("table")
    expect(table.locator("tbody tr")).to_have_count(1)
    fits = table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    assert fits, "the failed callbacks table is wider than its card"
    attempts = table.locator("th", has_text="Attempts")
    expect(attempts).to_be_visible()
    header = attempts.evaluate("th => th.scrollWidth <= th.clientWidth")
    assert header, "the Attempts heading is clipped"
    shoot(staff, "60-staff-overview-failed-callbacks")


def test_the_admin_reads_in_indonesian_with_its_actions_forms_and_model_names(
    page: Page, live_server: Any, staff_account: Account, log_in: LogIn, shoot: Shoot
) -> None:
    buyer = make_account("budi@example.com")
    topup_create(user=buyer.user, amount=100_000, provider="manual")  # the action needs a row
    log_in(page, staff_account)
    page.get_by_role("button", name="Bahasa Indonesia").click()
    page.goto(f"{live_server.url}/admin/")
    names = (
        "Isi saldo",
        "Penarikan",
        "Pesanan",
        "Pengiriman callback",
        "Pengguna",
        "Antrean tugas",
    )
    for name in names:
        expect(page.locator("#content-main")).to_contain_text(name)
    shoot(page, "61-admin-index-indonesian")

    page.goto(f"{live_server.url}/admin/billing/topup/")
    actions = page.locator("select[name='action']")
    expect(actions).to_contain_text("Konfirmasi pembayaran sudah masuk (transfer bank)")
    page.goto(f"{live_server.url}/admin/accounts/user/{buyer.user.pk}/change/")
    page.get_by_role("link", name="Sesuaikan saldo").click()
    expect(page.get_by_label("Catatan")).to_be_visible()
    page.get_by_label("Jumlah (rupiah)").fill("25000")
    page.get_by_label("Catatan").fill("transfer bank 27/11")
    page.get_by_role("button", name="Sesuaikan lewat buku besar").click()
    expect(page.get_by_text("saldonya sekarang Rp 25.000")).to_be_visible()
    shoot(page, "62-admin-adjusted-indonesian")


def test_the_admin_orders_list_heads_its_columns_in_indonesian(
    page: Page,
    live_server: Any,
    buyer_account: Account,
    staff_account: Account,
    whatsapp: Application,
    online_modem: Modem,
    log_in: LogIn,
    shoot: Shoot,
) -> None:
    order_create(buyer=buyer_account.user, application_id=whatsapp.pk)
    log_in(page, staff_account)
    page.get_by_role("button", name="Bahasa Indonesia").click()
    page.goto(f"{live_server.url}/admin/orders/order/")
    headers = page.locator("#result_list thead")
    for header in ("Pembeli", "Nomor telepon", "Harga", "Kode OTP", "Dibuat pada"):
        expect(headers).to_contain_text(header)
    expect(page.locator("#result_list tbody")).to_contain_text("Menunggu")  # the status
    expect(page.locator("#date-hierarchy-label")).to_have_text("Saring menurut dibuat pada")
    for english in ("Buyer", "Phone number", "Otp code", "Created at", "Expires at"):
        expect(headers).not_to_contain_text(english)
    shoot(page, "65-admin-orders-indonesian")
